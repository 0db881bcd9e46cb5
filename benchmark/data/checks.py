"""Validation shared by the readers: every failure names the file, the row and the problem."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataError


def require_file(path: Path) -> Path:
    if not path.is_file():
        raise DataError(path, "file not found")
    return path


def int_column(values: pd.Series, path: Path, column: str, first_row: int = 2) -> np.ndarray:
    """Parse a column of non-negative integer ids; ``first_row`` is the file row of element 0."""
    num = pd.to_numeric(values, errors="coerce")
    bad = num.isna().to_numpy() | (num.to_numpy(dtype=float, na_value=np.nan) % 1 != 0)
    if bad.any():
        i = int(np.nonzero(bad)[0][0])
        raise DataError(path, f"column {column!r}: {values.iloc[i]!r} is not an integer", first_row + i)
    arr = num.to_numpy().astype(np.int64)
    if (arr < 0).any():
        i = int(np.nonzero(arr < 0)[0][0])
        raise DataError(path, f"column {column!r}: negative id {arr[i]}", first_row + i)
    return arr


def ids_in_range(ids: np.ndarray, bound: int, path: Path, column: str, what: str,
                 rows: np.ndarray | None = None, first_row: int = 2) -> None:
    if (ids >= bound).any():
        i = int(np.nonzero(ids >= bound)[0][0])
        row = int(rows[i]) if rows is not None else first_row + i
        raise DataError(path, f"column {column!r}: id {ids[i]} is beyond the {bound} {what}", row)


def no_duplicates(users: np.ndarray, items: np.ndarray, path: Path,
                  rows: np.ndarray | None = None, first_row: int = 2) -> None:
    key = users.astype(np.int64) * (int(items.max(initial=0)) + 1) + items
    _, first, counts = np.unique(key, return_index=True, return_counts=True)
    if (counts > 1).any():
        dup_key = key[first[counts > 1][0]]
        i = int(np.nonzero(key == dup_key)[0][1])
        row = int(rows[i]) if rows is not None else first_row + i
        raise DataError(path, f"duplicate interaction (user {users[i]}, item {items[i]})", row)


def load_feature(path: Path, n_items: int) -> np.ndarray:
    """Load an (n_items, dim) feature matrix of any float dtype as float32, checked."""
    try:
        x = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise DataError(path, f"cannot be read as a .npy array ({e})") from None
    if x.ndim != 2:
        raise DataError(path, f"feature matrix must be 2-d, got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number):
        raise DataError(path, f"feature matrix has non-numeric dtype {x.dtype}")
    if x.shape[0] != n_items:
        raise DataError(path, f"feature matrix has {x.shape[0]} rows but the data has {n_items} items")
    x = x.astype(np.float32)
    finite = np.isfinite(x).all(axis=1)
    if not finite.all():
        raise DataError(path, "NaN or infinite feature values", int(np.nonzero(~finite)[0][0]))
    return x


def users_present(split_users: np.ndarray, path: Path, split: str) -> None:
    if split_users.size == 0:
        raise DataError(path, f"the {split} split has no users")


def read_tsv(path: Path) -> "pd.DataFrame":
    """A tab-separated file with a header, every cell as a string; clear errors on bad shape."""
    import csv
    require_file(path)
    try:
        return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE)
    except pd.errors.ParserError as e:
        raise DataError(path, f"wrong number of columns ({e})") from None
    except pd.errors.EmptyDataError:
        raise DataError(path, "the file is empty") from None
