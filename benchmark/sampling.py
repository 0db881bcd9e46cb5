"""Uniform negative sampling, vectorised: no loop over users or interactions."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def interaction_keys(m: sp.csr_matrix) -> np.ndarray:
    """Sorted ``user * n_items + item`` for every stored entry of ``m``."""
    users = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
    return np.sort(users * m.shape[1] + m.indices.astype(np.int64))


def sample_negatives(
    users: np.ndarray, train_keys: np.ndarray, n_items: int, n_neg: int, rng: np.random.Generator, max_rounds: int = 100
) -> np.ndarray:
    """For each user, ``n_neg`` items drawn uniformly among those it did not train on.

    Draws all at once, then redraws only the collisions (found by binary search in the sorted
    training keys) until none is left. Returns (len(users), n_neg) int64.
    """
    users = np.asarray(users, dtype=np.int64)
    neg = rng.integers(0, n_items, size=(len(users), n_neg))
    u = np.broadcast_to(users[:, None], neg.shape)
    todo = np.ones(neg.shape, dtype=bool)
    for _ in range(max_rounds):
        keys = u[todo] * n_items + neg[todo]
        pos = np.searchsorted(train_keys, keys)
        hit = train_keys[np.minimum(pos, len(train_keys) - 1)] == keys
        idx = np.flatnonzero(todo)
        todo = np.zeros(neg.shape, dtype=bool)
        todo.flat[idx[hit]] = True
        if not hit.any():
            return neg
        neg[todo] = rng.integers(0, n_items, size=int(todo.sum()))
    raise RuntimeError("negative sampling did not converge: a user has (almost) every item")


def epoch_pairs(train: sp.csr_matrix, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Every training (user, item) pair once, in a fresh random order."""
    users = np.repeat(np.arange(train.shape[0], dtype=np.int64), np.diff(train.indptr))
    items = train.indices.astype(np.int64)
    perm = rng.permutation(len(users))
    return users[perm], items[perm]
