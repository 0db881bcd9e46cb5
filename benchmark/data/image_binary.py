"""The Amazon 2014 image feature binary (``image_features_<Category>.b``).

Format: records repeated to the end of the file, each a 10-byte ASIN (ASCII) followed by
``dim`` (4096) little-endian float32 values, the CNN features of the item's image. There is no
header, so the file size must be a whole number of records; a remainder means a truncated file.

The file is memory-mapped and scanned in blocks of records, so its size (tens of GB for
Clothing) does not matter; only the rows of the wanted ASINs are copied. An ASIN field that is
not 10 letters or digits means the file is not such a binary, or has the wrong ``dim``. A
wanted ASIN that appears twice keeps its first record (the repeats are counted).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .checks import require_file
from .errors import DataError

ASIN_BYTES = 10
DEFAULT_DIM = 4096


def record_dtype(dim: int = DEFAULT_DIM) -> np.dtype:
    return np.dtype([("asin", f"S{ASIN_BYTES}"), ("feat", "<f4", (dim,))])


def write_image_features(path: Path, asins: list[str], feats: np.ndarray) -> None:
    """Write records in the binary's format (used to make fixtures and to export)."""
    feats = np.asarray(feats, np.float32)
    if feats.ndim != 2 or feats.shape[0] != len(asins):
        raise ValueError(f"features of shape {feats.shape} do not match {len(asins)} ASINs")
    rec = np.empty(len(asins), record_dtype(feats.shape[1]))
    for a in asins:
        if len(a.encode("ascii")) != ASIN_BYTES:
            raise ValueError(f"ASIN {a!r} is not {ASIN_BYTES} ASCII characters")
    rec["asin"] = np.asarray(asins, dtype=f"S{ASIN_BYTES}")
    rec["feat"] = feats
    rec.tofile(path)


@dataclass(frozen=True)
class ImageFeatures:
    features: np.ndarray  # (len(asins), dim) float32; rows of ASINs not found are zero
    found: np.ndarray  # bool per requested ASIN
    records: int  # records in the file
    repeats: int  # records of a wanted ASIN that appeared earlier in the file


def _valid_asin(raw: np.ndarray) -> np.ndarray:
    b = raw.view(np.uint8).reshape(len(raw), ASIN_BYTES)
    ok = ((b >= 48) & (b <= 57)) | ((b >= 65) & (b <= 90)) | ((b >= 97) & (b <= 122))
    return ok.all(axis=1)


def read_image_features(
    path: Path, asins: list[str] | np.ndarray, dim: int = DEFAULT_DIM, block: int = 16384, strict: bool = False
) -> ImageFeatures:
    """The features of ``asins`` (in that order) from the binary at ``path``.

    With ``strict``, an ASIN absent from the file is an error naming it; otherwise its row is
    zero and ``found`` is False there (the caller decides how to fill it).
    """
    path = Path(path)
    require_file(path)
    dt = record_dtype(dim)
    size = path.stat().st_size
    n_rec, rest = divmod(size, dt.itemsize)
    if rest:
        raise DataError(
            path,
            f"truncated: {size} bytes is not a whole number of {dt.itemsize}-byte "
            f"records (10-byte ASIN + {dim} float32); the last record has only "
            f"{rest} bytes",
            n_rec + 1,
        )
    if n_rec == 0:
        raise DataError(path, "the file holds no records")
    wanted = pd.Index(np.asarray(asins, dtype=object))
    if wanted.has_duplicates:
        raise ValueError("the requested ASINs hold duplicates")
    out = np.zeros((len(wanted), dim), np.float32)
    found = np.zeros(len(wanted), bool)
    repeats = 0
    mm = np.memmap(path, dtype=dt, mode="r", shape=(n_rec,))
    for start in range(0, n_rec, block):
        chunk = mm[start : start + block]
        raw = np.ascontiguousarray(chunk["asin"])
        ok = _valid_asin(raw)
        if not ok.all():
            i = int(np.nonzero(~ok)[0][0])
            raise DataError(
                path,
                f"record's ASIN field {bytes(raw[i])!r} is not 10 letters or digits "
                f"(not a {dim}-d image feature binary?)",
                start + i + 1,
            )
        keys = pd.Index(raw.astype("U10").astype(object))
        pos = wanted.get_indexer(keys)
        hit = np.nonzero(pos >= 0)[0]
        if hit.size == 0:
            continue
        dup_in_block = keys[hit].duplicated(keep="first")
        fresh = ~found[pos[hit]] & ~dup_in_block
        repeats += int((~fresh).sum())
        hit = hit[fresh]
        rows = np.asarray(chunk["feat"][hit], np.float32)
        finite = np.isfinite(rows).all(axis=1)
        if not finite.all():
            raise DataError(path, "NaN or infinite feature values", start + int(hit[~finite][0]) + 1)
        out[pos[hit]] = rows
        found[pos[hit]] = True
    del mm
    if strict and not found.all():
        missing = wanted[~found]
        raise DataError(path, f"{len(missing)} ASIN(s) have no record, first {missing[0]!r}")
    return ImageFeatures(out, found, n_rec, repeats)


def fill_missing_with_mean(x: np.ndarray, found: np.ndarray, what: str, where: Path | str) -> np.ndarray:
    """Rows not ``found`` get the mean of the found rows (the convention for items without an
    image or without metadata); an error when nothing was found (wrong file or key space)."""
    if not found.any():
        raise DataError(where, f"no item of the dataset has {what} here (wrong file or category?)")
    x = x.copy()
    x[~found] = x[found].mean(axis=0, dtype=np.float64).astype(x.dtype)
    return x
