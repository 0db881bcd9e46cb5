"""Full-ranking evaluation: every item scored for every user with targets, in user batches on
the model's device, training items (and optionally valid items) masked to -inf.

The top-K hits come from the rank of each target item (how many items of its row score at least
as high), not from ``topk``: one compare-and-count pass over the score rows is cheaper than
``torch.topk``'s per-row partial sort on the CPU, and the metrics only need where each target
lands (``python -m benchmark.study.speed`` times the full-ranking pass). Ties are broken
against the target (a tied item counts as ranked ahead), so a model that scores every item alike
gets no hits rather than lucky ones; a NaN score ranks last.
"""

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
    users: np.ndarray  # users evaluated (those with targets), sorted
    per_user: dict[str, np.ndarray] = field(repr=False)
    seconds: float = 0.0
    mask_valid: bool = False


def _batch_pairs(m: sp.csr_matrix, users: np.ndarray, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(row-in-batch, item) index tensors of the stored entries of ``m`` for ``users``."""
    sub = m[users]
    rows = np.repeat(np.arange(len(users)), np.diff(sub.indptr))
    return torch.from_numpy(rows).to(device), torch.from_numpy(sub.indices.astype(np.int64)).to(device)


def target_ranks(scores: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """0-based rank of ``scores[rows, cols]`` within its row, ties counted ahead, NaN last.

    ``rows`` must be sorted (as `_batch_pairs` returns them). The j-th target of every row is
    ranked in one vectorised pass over the rows that have one, so the loop runs over the largest
    number of targets a user has, never over users.
    """
    n = len(rows)
    target = scores[rows, cols]
    starts = torch.searchsorted(rows, rows, right=False)
    slot = torch.arange(n, device=rows.device) - starts
    ranks = torch.empty(n, dtype=torch.long, device=rows.device)
    for j in range(int(slot.max()) + 1 if n else 0):
        sel = torch.nonzero(slot == j).squeeze(1)
        r = rows[sel]
        block = scores if len(r) == scores.shape[0] else scores[r]  # slot 0 usually covers every row
        ahead = (block >= target[sel, None]).view(torch.uint8).sum(1, dtype=torch.int32)
        ranks[sel] = ahead.long() - 1
    ranks[torch.isnan(target)] = scores.shape[1]
    return ranks


@torch.no_grad()
def evaluate(
    model: Recommender,
    data: Dataset,
    split: str = "valid",
    mask_valid: bool = False,
    ks: tuple[int, ...] = KS,
    batch_users: int = 1024,
) -> EvalResult:
    """Rank all items for each user who has ``split`` items; metrics at ``ks``.

    At ``split="test"`` training items are masked, and valid items too when ``mask_valid``.
    Results do not depend on ``batch_users``.
    """
    if split not in ("valid", "test"):
        raise ValueError(f"split must be 'valid' or 'test', got {split!r}")
    t0 = time.perf_counter()
    target: sp.csr_matrix = getattr(data, split)
    mask = data.train if not (split == "test" and mask_valid) else (data.train + data.valid).tocsr()
    n_targets = np.diff(target.indptr)
    users = np.flatnonzero(n_targets > 0)
    was_training = model.training
    model.eval()
    model.prepare_scoring()
    device = model.device
    k_max = max(ks)
    parts: dict[str, list[torch.Tensor]] = {}
    for start in range(0, len(users), batch_users):
        u = users[start : start + batch_users]
        scores = model.score(torch.from_numpy(u).to(device)).float()
        r, c = _batch_pairs(mask, u, device)
        scores[r, c] = -torch.inf
        r, c = _batch_pairs(target, u, device)
        ranks = target_ranks(scores, r, c)
        keep = ranks < k_max
        hits = torch.zeros(len(u), k_max, device=device)  # hits per rank (2 where targets tie)
        hits.index_put_((r[keep], ranks[keep]), torch.ones((), device=device).expand(int(keep.sum())), accumulate=True)
        n_rel = torch.from_numpy(n_targets[u]).to(device)
        for name, v in topk_metrics(hits, n_rel, ks).items():
            parts.setdefault(name, []).append(v.cpu())
    model.train(was_training)
    per_user = {k: torch.cat(v).numpy() for k, v in parts.items()}
    mean = {k: float(v.mean()) for k, v in per_user.items()}
    return EvalResult(split, mean, users, per_user, time.perf_counter() - t0, mask_valid)
