"""A reproducible random batch for the model tests (a loss on fixed users, positives, negatives)."""

from __future__ import annotations

import torch

from benchmark.data import Dataset
from benchmark.model import Batch


def random_batch(data: Dataset, n: int = 64, seed: int = 1) -> Batch:
    """``n`` random (user, item, item) triples of ``data`` drawn from a generator seeded ``seed``."""
    g = torch.Generator().manual_seed(seed)
    return Batch(
        torch.randint(0, data.n_users, (n,), generator=g),
        torch.randint(0, data.n_items, (n,), generator=g),
        torch.randint(0, data.n_items, (n,), generator=g),
    )
