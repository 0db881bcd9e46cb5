"""Put a feature matrix keyed by another id space into a split's item order.

A feature file from another preprocessing (MMRec's ``image_feat.npy`` / ``text_feat.npy``, say)
has one row per item of *its* id space. A key map (``itemID<TAB>key`` with a header, for example
``amazon-baby/item_asin.tsv``: this split's item id and the item's ASIN) says which key each item
of the split has. The rows of the feature file are keyed either

- explicitly, by a second map of the same format (``--row-keys``; MMRec's
  ``i_id_mapping.csv``, ``asin<TAB>itemID``, is one), or
- by default, by MMRec's convention: row ``r`` is the ``r``-th key in sorted order. That needs the
  feature file to have exactly one row per key of the map.

Output row ``i`` is the feature row of the key of item ``i``. Refused, with the file and row
named: a key or item id repeated in a map, item ids that are not ``0..n-1``, a key of the split
that has no feature row, a row count that does not match its keys. Feature rows that no item of
the split uses are allowed (the other preprocessing may have kept more items) and counted.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .checks import int_column, read_feature_npy, read_tsv
from .errors import DataError

ID_COLUMN = "itemID"


def read_key_map(path: Path) -> np.ndarray:
    """The key of each item id 0..n-1 from a two-column TSV with a header naming ``itemID``."""
    path = Path(path)
    df = read_tsv(path)
    if ID_COLUMN not in df.columns or df.shape[1] != 2:
        raise DataError(
            path,
            f"expected two tab-separated columns, one named {ID_COLUMN!r} and the key; "
            f"the header has {list(df.columns)}",
            1,
        )
    if len(df) == 0:
        raise DataError(path, "no rows")
    key_col = next(c for c in df.columns if c != ID_COLUMN)
    ids = int_column(df[ID_COLUMN], path, ID_COLUMN)
    keys = df[key_col].to_numpy(object)
    empty = np.nonzero(df[key_col].str.len().to_numpy() == 0)[0]
    if empty.size:
        raise DataError(path, f"empty {key_col!r}", int(empty[0]) + 2)
    for what, values in ((ID_COLUMN, pd.Series(ids)), (key_col, pd.Series(keys))):
        dup = values.duplicated(keep="first").to_numpy()
        if dup.any():
            i = int(np.nonzero(dup)[0][0])
            first = int(np.nonzero((values == values.iloc[i]).to_numpy())[0][0])
            raise DataError(path, f"{what} {values.iloc[i]} is repeated (first at row {first + 2})", i + 2)
    n = len(ids)
    if ids.max() >= n:
        i = int(np.argmax(ids))
        raise DataError(path, f"{ID_COLUMN} {ids[i]} is beyond {n - 1}: the ids must be 0..{n - 1}", i + 2)
    out = np.empty(n, object)
    out[ids] = keys
    return out


def align_features(
    features: np.ndarray, item_keys: np.ndarray, row_keys: np.ndarray | None, where: Path | str, map_path: Path | str
) -> tuple[np.ndarray, dict[str, int]]:
    """Rows of ``features`` reordered to ``item_keys``' order; a report of what was matched."""
    if features.ndim != 2:
        raise DataError(where, f"feature matrix must be 2-d, got shape {features.shape}")
    if row_keys is None:
        if features.shape[0] != len(item_keys):
            raise DataError(
                where,
                f"{features.shape[0]} feature rows but the key map has {len(item_keys)} "
                "keys: rows can only be taken as keyed in sorted key order when they "
                "match one to one; give the rows' keys (--row-keys)",
            )
        row_keys = np.sort(item_keys.astype(str)).astype(object)
    elif len(row_keys) != features.shape[0]:
        raise DataError(where, f"{features.shape[0]} feature rows but {len(row_keys)} row keys")
    pos = pd.Index(row_keys).get_indexer(pd.Index(item_keys))
    missing = np.nonzero(pos < 0)[0]
    if missing.size:
        i = int(missing[0])
        raise DataError(
            map_path, f"{missing.size} key(s) have no feature row; first: item {i}, key {item_keys[i]!r}", i + 2
        )
    return features[pos], {
        "items": len(item_keys),
        "feature_rows": int(features.shape[0]),
        "rows_unused": int(features.shape[0] - len(item_keys)),
    }


def align_feature_file(features: Path, key_map: Path, out: Path, row_keys: Path | None = None) -> dict[str, int]:
    """The command: read, align, write ``out`` (.npy, the input's dtype) atomically."""
    features, key_map, out = Path(features), Path(key_map), Path(out)
    x = read_feature_npy(features)
    item_keys = read_key_map(key_map)
    rk = read_key_map(row_keys) if row_keys is not None else None
    y, report = align_features(x, item_keys, rk, row_keys or features, key_map)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.npy")
    np.save(tmp, y)
    os.replace(tmp, out)
    return report
