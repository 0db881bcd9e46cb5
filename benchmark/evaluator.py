"""Full-ranking evaluation: every item scored for every user with targets, in user batches on
the model's device, training items (and optionally valid items) masked to -inf."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch

from .data import Dataset
from .metrics import KS, topk_metrics
from .model import Recommender


@dataclass
class EvalResult:
    split: str
    mean: dict[str, float]
    users: np.ndarray                               # users evaluated (those with targets), sorted
    per_user: dict[str, np.ndarray] = field(repr=False)
    seconds: float = 0.0
    mask_valid: bool = False


def _batch_pairs(m: sp.csr_matrix, users: np.ndarray, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(row-in-batch, item) index tensors of the stored entries of ``m`` for ``users``."""
    sub = m[users]
    rows = np.repeat(np.arange(len(users)), np.diff(sub.indptr))
    return torch.from_numpy(rows).to(device), torch.from_numpy(sub.indices.astype(np.int64)).to(device)


@torch.no_grad()
def evaluate(model: Recommender, data: Dataset, split: str = "valid", mask_valid: bool = False,
             ks: tuple[int, ...] = KS, batch_users: int = 4096) -> EvalResult:
    """Rank all items for each user who has ``split`` items; metrics at ``ks``.

    At ``split="test"`` training items are masked, and valid items too when ``mask_valid``.
    Results do not depend on ``batch_users``.
    """
    if split not in ("valid", "test"):
        raise ValueError(f"split must be 'valid' or 'test', got {split!r}")
    t0 = time.perf_counter()
    target: sp.csr_matrix = getattr(data, split)
    mask = data.train if not (split == "test" and mask_valid) else (data.train + data.valid).tocsr()
    users = np.flatnonzero(np.diff(target.indptr) > 0)
    was_training = model.training
    model.eval()
    model.prepare_scoring()
    device = model.device
    k_max = max(ks)
    parts: dict[str, list[torch.Tensor]] = {}
    for start in range(0, len(users), batch_users):
        u = users[start:start + batch_users]
        scores = model.score(torch.from_numpy(u).to(device)).float()
        r, c = _batch_pairs(mask, u, device)
        scores[r, c] = -torch.inf
        top = scores.topk(k_max, dim=1).indices
        rel = torch.zeros(scores.shape, dtype=torch.bool, device=device)
        r, c = _batch_pairs(target, u, device)
        rel[r, c] = True
        hits = rel.gather(1, top)
        n_rel = torch.from_numpy(np.diff(target.indptr)[u]).to(device)
        for name, v in topk_metrics(hits, n_rel, ks).items():
            parts.setdefault(name, []).append(v.cpu())
    model.train(was_training)
    per_user = {k: torch.cat(v).numpy() for k, v in parts.items()}
    mean = {k: float(v.mean()) for k, v in per_user.items()}
    return EvalResult(split, mean, users, per_user, time.perf_counter() - t0, mask_valid)
