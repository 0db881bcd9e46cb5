"""Loss pieces the models share; each regulariser keeps the form of the model's source."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def bpr(pos: Tensor, neg: Tensor) -> Tensor:
    """-mean log sigmoid(s_ui - s_uj); ``neg`` may carry several negatives per row."""
    if neg.dim() > pos.dim():
        pos = pos.unsqueeze(-1)
    return -F.logsigmoid(pos - neg).mean()


def emb_loss(*tensors: Tensor) -> Tensor:
    """MMRec's ``EmbLoss``: sum of (non-squared) Frobenius norms divided by the batch size."""
    return sum(t.norm(p=2) for t in tensors) / tensors[0].shape[0]


def half_sq(*tensors: Tensor) -> Tensor:
    """LightGCN / LATTICE / MICRO: 0.5 * sum of squares / batch size."""
    return 0.5 * sum(t.pow(2).sum() for t in tensors) / tensors[0].shape[0]


def mean_sq(*tensors: Tensor) -> Tensor:
    """Wei et al. (MMGCN, GRCN, HUIGN): mean of the squared entries, summed over tensors."""
    return sum(t.pow(2).mean() for t in tensors)


def info_nce(a: Tensor, b: Tensor, temperature: float) -> Tensor:
    """In-batch InfoNCE of L2-normalised rows: row i of ``a`` against row i of ``b``."""
    logits = F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T / temperature
    return F.cross_entropy(logits, torch.arange(a.shape[0], device=a.device))


def dot(u: Tensor, x: Tensor) -> Tensor:
    """<u, x> row-wise; ``x`` may carry an extra axis of several items per user (B, n, d)."""
    if x.dim() == u.dim() + 1:
        return (u.unsqueeze(-2) * x).sum(-1)
    return (u * x).sum(-1)


def bpr_dot(u: Tensor, i: Tensor, j: Tensor) -> Tensor:
    """BPR on dot-product scores of users ``u``, positives ``i`` and negatives ``j``."""
    return bpr(dot(u, i), dot(u, j))
