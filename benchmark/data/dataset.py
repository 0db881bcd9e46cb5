"""The immutable `Dataset` every model and the evaluator read.

A dataset is three binary user x item matrices (train / valid / test, disjoint), optional item
feature matrices keyed by modality code (``"v"`` visual, ``"t"`` text, ``"a"`` acoustic), and,
where the source has them, the timestamps of the training interactions (they order histories).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from .errors import DataError

MODALITIES: dict[str, str] = {"v": "visual", "t": "text", "a": "acoustic"}


def _frozen(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _freeze_csr(m: sp.csr_matrix) -> sp.csr_matrix:
    for arr in (m.data, m.indices, m.indptr):
        arr.flags.writeable = False
    return m


@dataclass(frozen=True, eq=False)
class Dataset:
    """An immutable recommendation dataset.

    Attributes:
        name: the name it was loaded by (``synthetic-baby``, ``tiktok``...).
        n_users, n_items: sizes of the id spaces (ids are dense, from 0).
        train, valid, test: binary ``csr_matrix`` of shape (n_users, n_items), pairwise disjoint.
        features: modality code -> float32 array (n_items, dim), finite.
        train_time: optional ``csr_matrix`` with the pattern of ``train`` whose values are the
            interactions' timestamps (used to keep the most recent items of a history).
        synthetic: True for the embedded generator's data; labelled wherever numbers appear.
        source: one line on where the data came from.
    """

    name: str
    n_users: int
    n_items: int
    train: sp.csr_matrix
    valid: sp.csr_matrix
    test: sp.csr_matrix
    features: Mapping[str, np.ndarray] = field(default_factory=dict)
    train_time: sp.csr_matrix | None = None
    synthetic: bool = False
    source: str = ""

    def __post_init__(self) -> None:
        shape = (self.n_users, self.n_items)
        for split in ("train", "valid", "test"):
            m = getattr(self, split)
            if m.shape != shape:
                raise DataError(self.name, f"{split} has shape {m.shape}, expected {shape}")
            if m.nnz == 0:
                raise DataError(self.name, f"the {split} split is empty (no users)")
            m = sp.csr_matrix(m, dtype=np.float32)
            m.sum_duplicates()
            m.sort_indices()
            m.data[:] = 1.0
            object.__setattr__(self, split, _freeze_csr(m))
        if (
            self.train.multiply(self.valid).nnz
            or self.train.multiply(self.test).nnz
            or self.valid.multiply(self.test).nnz
        ):
            raise DataError(self.name, "train, valid and test share interactions")
        if self.train_time is not None and (self.train_time.shape != shape or self.train_time.nnz != self.train.nnz):
            raise DataError(self.name, "train_time does not have the pattern of train")
        feats = {}
        for code, x in self.features.items():
            if code not in MODALITIES:
                raise DataError(self.name, f"unknown modality code {code!r}; known: {sorted(MODALITIES)}")
            x = np.ascontiguousarray(x, dtype=np.float32)
            if x.ndim != 2 or x.shape[0] != self.n_items:
                raise DataError(
                    self.name, f"{MODALITIES[code]} features have shape {x.shape}, expected ({self.n_items}, dim)"
                )
            if not np.isfinite(x).all():
                row = int(np.nonzero(~np.isfinite(x).all(axis=1))[0][0])
                raise DataError(self.name, f"{MODALITIES[code]} features hold NaN or infinite values", row)
            feats[code] = _frozen(x)
        object.__setattr__(self, "features", dict(sorted(feats.items())))

    # ----- derived views -------------------------------------------------------------------
    @property
    def modalities(self) -> tuple[str, ...]:
        """The raw modality codes present, sorted."""
        return tuple(self.features)

    @cached_property
    def checksum(self) -> str:
        """SHA-256 (first 16 hex) over the splits and features: two equal datasets share it."""
        h = hashlib.sha256(f"{self.n_users},{self.n_items}".encode())
        for m in (self.train, self.valid, self.test):
            h.update(m.indptr.tobytes())
            h.update(m.indices.tobytes())
        for code, x in self.features.items():
            h.update(code.encode())
            h.update(x.tobytes())
        return h.hexdigest()[:16]

    @cached_property
    def user_degree(self) -> np.ndarray:
        return _frozen(np.diff(self.train.indptr).astype(np.int64))

    @cached_property
    def item_degree(self) -> np.ndarray:
        return _frozen(np.bincount(self.train.indices, minlength=self.n_items).astype(np.int64))

    def histories(self, max_len: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Padded training histories: (n_users, L) item ids padded with ``n_items`` and lengths.

        Users with more than ``max_len`` items keep their most recent ones where timestamps
        exist, otherwise a fixed sample drawn with ``seed``. ``L = min(max_len, max degree)``.
        """
        deg = self.user_degree
        L = int(min(max_len, max(1, deg.max())))
        rng = np.random.default_rng(seed)
        # one sort key per interaction: time where known, else a random tie-breaker; the
        # newest L (largest keys) are kept, then re-ordered oldest first
        key = self.train_time.data.astype(np.float64) if self.train_time is not None else rng.random(self.train.nnz)
        rows = np.repeat(np.arange(self.n_users), deg)
        order = np.lexsort((-key, rows))  # per user, newest first
        pos = np.arange(self.train.nnz) - np.repeat(self.train.indptr[:-1], deg)
        keep = pos < L
        items = self.train.indices[order][keep]
        r = rows[keep]
        p = pos[keep]
        lengths = np.minimum(deg, L)
        out = np.full((self.n_users, L), self.n_items, dtype=np.int64)
        out[r, lengths[r] - 1 - p] = items  # oldest first
        return out, lengths

    def summary(self) -> dict[str, float | int | str]:
        """The Table 1 row: users, items, interactions (train + test, as the paper counts), density."""
        inter = int(self.train.nnz + self.test.nnz)
        return {
            "dataset": self.name,
            "users": self.n_users,
            "items": self.n_items,
            "train": int(self.train.nnz),
            "valid": int(self.valid.nnz),
            "test": int(self.test.nnz),
            "interactions": inter,
            "density": inter / (self.n_users * self.n_items),
            "modalities": ",".join(MODALITIES[m] for m in self.modalities) or "none",
            "synthetic": self.synthetic,
        }


def from_triples(
    name: str,
    users: np.ndarray,
    items: np.ndarray,
    split: np.ndarray,
    n_users: int,
    n_items: int,
    features: Mapping[str, np.ndarray] | None = None,
    timestamps: np.ndarray | None = None,
    synthetic: bool = False,
    source: str = "",
) -> Dataset:
    """Build a `Dataset` from parallel arrays; ``split`` holds 0 train, 1 valid, 2 test."""
    mats = []
    for s in range(3):
        m = split == s
        mats.append(sp.csr_matrix((np.ones(int(m.sum()), np.float32), (users[m], items[m])), shape=(n_users, n_items)))
    train_time = None
    if timestamps is not None:
        m = split == 0
        t = timestamps[m].astype(np.float64)
        # shifted to start at 1 so that no timestamp is an (implicit) sparse zero
        train_time = sp.csr_matrix((t - t.min() + 1.0, (users[m], items[m])), shape=(n_users, n_items))
        train_time.sort_indices()
    return Dataset(
        name, n_users, n_items, mats[0], mats[1], mats[2], dict(features or {}), train_time, synthetic, source
    )
