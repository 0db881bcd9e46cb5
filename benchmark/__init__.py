"""The platform of the MMIL benchmark suite: data, graphs, the model contract, the shared
trainer, the full-ranking evaluator, run records, experiments and reports."""

import torch

from .allocator import keep_freed_memory

__version__ = "0.1.0"

# every process that imports the suite (the driver, its joblib or Dask workers, the benchmarks)
keep_freed_memory()
# the suite builds its sparse tensors from indices it has checked; saying so explicitly (the
# default already skips the checks) stops torch warning about it on every graph it builds
torch.sparse.check_sparse_tensor_invariants.disable()
