"""Reader for the LATTICE / MICRO layout: ``<dir>/5-core/{train,val,test}.json``.

Each JSON file maps a user id (string) to the list of its item ids. Features, as in the MMRec
layout, are optional ``image_feat.npy`` / ``text_feat.npy`` / ``audio_feat.npy`` beside ``5-core``.
Rows in errors are 1-based positions of the user's entry in the JSON object.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .checks import ids_in_range, load_feature, no_duplicates, read_feature_npy, require_file
from .dataset import Dataset, from_triples
from .errors import DataError
from .mmrec import FEATURE_FILES

SPLIT_FILES = ("train.json", "val.json", "test.json")


def _read_split(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    require_file(path)
    try:
        obj = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(path, f"invalid JSON ({e.msg})", e.lineno) from None
    if not isinstance(obj, dict):
        raise DataError(path, "expected a JSON object mapping user id to a list of item ids")
    users, items, rows = [], [], []
    for row, (key, value) in enumerate(obj.items(), start=1):
        try:
            u = int(key)
        except ValueError:
            raise DataError(path, f"user id {key!r} is not an integer", row) from None
        if u < 0:
            raise DataError(path, f"negative user id {u}", row)
        if not isinstance(value, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in value):
            raise DataError(path, f"user {u}: item list must be a list of integers", row)
        if any(i < 0 for i in value):
            raise DataError(path, f"user {u}: negative item id", row)
        users.extend([u] * len(value))
        items.extend(value)
        rows.extend([row] * len(value))
    if not items:
        raise DataError(path, "the split has no users")
    return np.asarray(users, np.int64), np.asarray(items, np.int64), np.asarray(rows, np.int64)


def load_lattice(folder: Path, name: str) -> Dataset:
    folder = Path(folder)
    parts = [_read_split(folder / "5-core" / f) for f in SPLIT_FILES]
    users = np.concatenate([p[0] for p in parts])
    items = np.concatenate([p[1] for p in parts])
    split = np.concatenate([np.full(len(p[0]), s) for s, p in enumerate(parts)])
    for s, (u, i, r) in enumerate(parts):
        no_duplicates(u, i, folder / "5-core" / SPLIT_FILES[s], rows=r)
    # a pair in two splits is a duplicate too: report it against the later file
    key = users * (int(items.max()) + 1) + items
    _, first, counts = np.unique(key, return_index=True, return_counts=True)
    if (counts > 1).any():
        dup = np.nonzero(key == key[first[counts > 1][0]])[0][1]
        s = int(split[dup])
        raise DataError(
            folder / "5-core" / SPLIT_FILES[s],
            f"interaction (user {users[dup]}, item {items[dup]}) is also in an earlier split",
            int(parts[s][2][dup - sum(len(p[0]) for p in parts[:s])]),
        )
    present = {c: folder / f for c, f in FEATURE_FILES.items() if (folder / f).is_file()}
    n_users = int(users.max()) + 1
    if present:
        n_items = max(read_feature_npy(p, mmap=True).shape[0] for p in present.values())
        for s, (u, i, r) in enumerate(parts):
            ids_in_range(
                i, n_items, folder / "5-core" / SPLIT_FILES[s], "item", "items of the feature matrices", rows=r
            )
    else:
        n_items = int(items.max()) + 1
    features = {c: load_feature(p, n_items) for c, p in present.items()}
    return from_triples(name, users, items, split, n_users, n_items, features, source=f"LATTICE layout at {folder}")
