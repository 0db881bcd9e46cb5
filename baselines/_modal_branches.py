"""The per-modality item inputs shared by SLMRec and MMGCL: L2-normalised raw features, each
through its own Linear(dim_m -> d) (xavier-uniform), as both sources build their branches."""

from __future__ import annotations

import torch
from torch import nn

from benchmark.data import Dataset


def modal_projections(owner: nn.Module, data: Dataset, d: int) -> nn.ModuleDict:
    """Register ``feat_<m>`` (row-normalised copy of each modality) on ``owner`` as a buffer and
    return the ``Linear`` of each modality."""
    dense = nn.ModuleDict()
    for m in data.modalities:
        x = torch.tensor(data.features[m], dtype=torch.float32)
        x.div_(x.norm(dim=1, keepdim=True).clamp_min(1e-12))  # one copy of the read-only array
        owner.register_buffer(f"feat_{m}", x, persistent=False)
        dense[m] = nn.Linear(x.shape[1], d)
        nn.init.xavier_uniform_(dense[m].weight)
    return dense
