"""Reader for the MMRec layout: ``<dir>/<name>.inter`` plus optional feature ``.npy`` files.

The ``.inter`` file is tab-separated with a header naming at least ``userID``, ``itemID`` and
``x_label`` (0 train, 1 valid, 2 test); ``timestamp``, where present, orders user histories.
Features: ``image_feat.npy`` (visual), ``text_feat.npy`` (text), ``audio_feat.npy`` (acoustic),
each (n_items, dim) of any float dtype. The item count is the feature matrices' row count where
there are features (an item id beyond it is an error), else the largest item id + 1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .checks import ids_in_range, int_column, load_feature, no_duplicates, read_feature_npy, read_tsv, users_present
from .dataset import Dataset, from_triples
from .errors import DataError

FEATURE_FILES: dict[str, str] = {"v": "image_feat.npy", "t": "text_feat.npy", "a": "audio_feat.npy"}
REQUIRED = ("userID", "itemID", "x_label")


def find_inter(folder: Path) -> Path:
    found = sorted(folder.glob("*.inter"))
    if not found:
        raise DataError(folder, "no <name>.inter file in this folder")
    if len(found) > 1:
        raise DataError(folder, f"several .inter files: {[p.name for p in found]}")
    return found[0]


def read_inter(path: Path) -> pd.DataFrame:
    df = read_tsv(path)
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise DataError(path, f"header lacks column(s) {missing}; it has {list(df.columns)}", 1)
    empty = (df[list(REQUIRED)] == "").any(axis=1).to_numpy()
    if empty.any():
        raise DataError(path, "missing value (too few columns?)", int(np.nonzero(empty)[0][0]) + 2)
    if len(df) == 0:
        raise DataError(path, "no interactions")
    return df


def load_mmrec(folder: Path, name: str) -> Dataset:
    """Load an MMRec-layout folder; ``name`` is the dataset name it is known by."""
    folder = Path(folder)
    path = find_inter(folder)
    df = read_inter(path)
    users = int_column(df["userID"], path, "userID")
    items = int_column(df["itemID"], path, "itemID")
    split = int_column(df["x_label"], path, "x_label")
    ids_in_range(split, 3, path, "x_label", "labels (0 train, 1 valid, 2 test)")
    ts = None
    if "timestamp" in df.columns:
        ts = pd.to_numeric(df["timestamp"], errors="coerce").to_numpy(dtype=float)
        if np.isnan(ts).any():
            raise DataError(path, "column 'timestamp' is not numeric", int(np.nonzero(np.isnan(ts))[0][0]) + 2)
    no_duplicates(users, items, path)
    n_users = int(users.max()) + 1
    present = {c: folder / f for c, f in FEATURE_FILES.items() if (folder / f).is_file()}
    if present:
        rows = {c: read_feature_npy(p, mmap=True).shape[0] for c, p in present.items()}
        n_items = max(rows.values())
        ids_in_range(items, n_items, path, "itemID", "items of the feature matrices")
    else:
        n_items = int(items.max()) + 1
    features = {c: load_feature(p, n_items) for c, p in present.items()}
    for s, label in enumerate(("train", "valid", "test")):
        users_present(np.unique(users[split == s]), path, label)
    return from_triples(name, users, items, split, n_users, n_items, features, ts, source=f"MMRec layout at {folder}")
