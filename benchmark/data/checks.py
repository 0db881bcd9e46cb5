"""Validation shared by the readers: every failure names the file, the row and the problem."""

from __future__ import annotations

import math
import os
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


def ids_in_range(
    ids: np.ndarray, bound: int, path: Path, column: str, what: str, rows: np.ndarray | None = None, first_row: int = 2
) -> None:
    if (ids >= bound).any():
        i = int(np.nonzero(ids >= bound)[0][0])
        row = int(rows[i]) if rows is not None else first_row + i
        raise DataError(path, f"column {column!r}: id {ids[i]} is beyond the {bound} {what}", row)


def no_duplicates(
    users: np.ndarray, items: np.ndarray, path: Path, rows: np.ndarray | None = None, first_row: int = 2
) -> None:
    key = users.astype(np.int64) * (int(items.max(initial=0)) + 1) + items
    _, first, counts = np.unique(key, return_index=True, return_counts=True)
    if (counts > 1).any():
        dup_key = key[first[counts > 1][0]]
        i = int(np.nonzero(key == dup_key)[0][1])
        row = int(rows[i]) if rows is not None else first_row + i
        raise DataError(path, f"duplicate interaction (user {users[i]}, item {items[i]})", row)


def read_feature_npy(path: Path, mmap: bool = False) -> np.ndarray:
    """The (n_items, dim) matrix of real numbers in a feature ``.npy`` file, in its stored dtype.

    The one reader of feature files: every failure is a `DataError` naming the file and the
    problem (missing, not a ``.npy``, damaged header, pickled objects, truncated, not 2-d, not a
    real number dtype). The header is checked before any data is read; ``mmap`` maps the data
    read-only instead of reading it (the shape is then known without loading the matrix).
    """
    path = require_file(Path(path))
    fmt = np.lib.format
    try:
        with open(path, "rb") as f:
            try:
                version = fmt.read_magic(f)
            except ValueError:
                empty = os.fstat(f.fileno()).st_size == 0
                raise DataError(
                    path,
                    "is empty, not a NumPy .npy file"
                    if empty
                    else "not a NumPy .npy file (it lacks the .npy magic bytes)",
                ) from None
            try:
                # version 3.0 differs from 2.0 only in a utf-8 header (non-latin-1 field names)
                read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
                shape, _, dtype = read_header(f)
            except ValueError as e:
                if "EOF" in str(e):
                    raise DataError(path, f"is truncated: the .npy header is incomplete ({e})") from None
                raise DataError(path, f"has a damaged .npy header ({e})") from None
            offset = f.tell()
            size = os.fstat(f.fileno()).st_size
    except OSError as e:
        raise DataError(path, f"cannot be read ({e.strerror or e})") from None
    if dtype.hasobject:
        raise DataError(path, "holds pickled Python objects, not numbers")
    if len(shape) != 2:
        raise DataError(
            path,
            f"has {len(shape)} dimension{'s' if len(shape) != 1 else ''}, expected "
            f"(n_items, dim); its shape is {shape}",
        )
    if np.issubdtype(dtype, np.complexfloating):
        raise DataError(path, f"dtype {dtype.str} is complex, features must be real numbers")
    if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)):
        raise DataError(path, f"dtype {dtype.str} is not numeric")
    need = math.prod(shape) * dtype.itemsize
    if size - offset < need:
        raise DataError(
            path, f"is truncated: shape {shape} of {dtype} needs {need} bytes of data, the file holds {size - offset}"
        )
    if need == 0:  # nothing to map (an empty file region cannot be memory-mapped)
        return np.empty(shape, dtype)
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise DataError(path, f"cannot be read as a .npy array ({e})") from None


def load_feature(path: Path, n_items: int) -> np.ndarray:
    """Load an (n_items, dim) feature matrix of any real dtype as float32, checked."""
    x = read_feature_npy(path)
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


def read_tsv(path: Path) -> pd.DataFrame:
    """A tab-separated file with a header, every cell as a string; clear errors on bad shape."""
    import csv

    require_file(path)
    try:
        return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE)
    except pd.errors.ParserError as e:
        raise DataError(path, f"wrong number of columns ({e})") from None
    except pd.errors.EmptyDataError:
        raise DataError(path, "the file is empty") from None
