"""Per-user train / valid / test split conventions (vectorised; 0 train, 1 valid, 2 test)."""

from __future__ import annotations

import numpy as np


def _ranks(users: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank of each interaction within its user under ``order``, and that user's count."""
    u_sorted = users[order]
    counts = np.bincount(u_sorted)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(len(order)) - starts, np.repeat(counts, counts)


def chronological_split(
    users: np.ndarray, times: np.ndarray, items: np.ndarray, ratios: tuple[float, float] = (0.8, 0.1)
) -> np.ndarray:
    """MMRec's convention: per user, by time (item id breaks ties), the first ``round(0.8 n)``
    train, the next ``round(0.1 n)`` valid, the rest test."""
    order = np.lexsort((items, times, users))
    rank, n = _ranks(users, order)
    n_train = np.round(ratios[0] * n)
    n_valid = np.round(ratios[1] * n)
    out = np.empty(len(users), np.int64)
    out[order] = np.where(rank < n_train, 0, np.where(rank < n_train + n_valid, 1, 2))
    return out


def random_split(users: np.ndarray, rng: np.random.Generator, valid_rounds_up: bool = True) -> np.ndarray:
    """LATTICE's convention: per user, in random order; below 10 items one goes to valid and one
    to test; otherwise ``int(0.2 n)`` are held out and split in half, the odd item to valid
    (valid ``held - held // 2``, test ``held // 2``): that is what LATTICE's released Amazon splits
    hold, for every user of Baby, Sports and Clothing (``../shared/data``), although its script
    reads as if test got it. ``valid_rounds_up=False`` gives the odd item to test.
    """
    order = np.lexsort((rng.random(len(users)), users))
    rank, n = _ranks(users, order)
    held = np.where(n < 10, 2, (0.2 * n).astype(np.int64))
    n_valid = held - held // 2 if valid_rounds_up else held // 2
    out = np.empty(len(users), np.int64)
    out[order] = np.where(rank < n_valid, 1, np.where(rank < held, 2, 0))
    return out
