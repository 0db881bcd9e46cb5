"""The platform of the MMIL benchmark suite: data, graphs, the model contract, the shared
trainer, the full-ranking evaluator, run records, experiments and reports."""

from .allocator import keep_freed_memory

__version__ = "0.1.0"

# every process that imports the suite (the driver, its joblib or Dask workers, the benchmarks)
keep_freed_memory()
