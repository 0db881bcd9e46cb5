"""Reading the raw Amazon 2014 files (McAuley et al.) and the k-core filter.

Reviews: JSON lines (``reviews_<Category>.json.gz`` or the ``_5`` 5-core copy), plain or
gzipped (recognised by content, not by name), one object per line with at least ``reviewerID``,
``asin`` and ``unixReviewTime``; or the ratings-only CSV (``ratings_<Category>.csv``: user, item,
rating, time, no header). Metadata (``meta_<Category>.json.gz``): one item per line, either JSON
or the Python dict literal the 2014 metadata was written in (single quotes), with ``asin`` and
any of ``title``, ``brand``, ``categories`` (list of lists), ``description``.

Decisions:

- A (user, item) pair reviewed more than once keeps its earliest review (then the first line);
  the number dropped is reported.
- The k-core filter removes, at every pass, each interaction whose user or item has fewer than
  ``k`` interactions left, until a pass removes nothing: the fixed point is the largest subgraph
  where every user and item has at least ``k`` (the same whatever the removal order). Applied to
  the published 5-core files it removes nothing.
- Users and items get dense ids in sorted order of ``reviewerID`` / ASIN (MMRec's convention for
  items), so the ids depend only on the surviving set, not on the file's line order.
- Metadata lines are only parsed for the items that survived the filter (their ASIN is found by a
  pattern first): the full 2014 metadata has millions of lines and a Python-literal parse is slow.
  A line with no ASIN at all, or a wanted line that does not parse, is an error.
- Errors name the file and the 1-based line.
"""

from __future__ import annotations

import ast
import gzip
import html
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from .checks import require_file
from .errors import DataError

REVIEW_FIELDS = ("reviewerID", "asin", "unixReviewTime")
_ASIN_PATTERN = re.compile(r"""["']asin["']\s*:\s*["']([^"']*)["']""")


def open_text(path: Path) -> IO[str]:
    """Open a text file that may be gzipped (the two magic bytes decide, not the name)."""
    require_file(path)
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def parse_record(line: str, path: Path, row: int) -> dict:
    """One line as a dict: JSON first, else a Python literal (the 2014 metadata's format)."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError:
        try:
            obj = ast.literal_eval(line)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            text = line if len(line) <= 60 else line[:57] + "..."
            raise DataError(path, f"not a JSON object nor a Python dict literal: {text!r}", row) from None
    if not isinstance(obj, dict):
        raise DataError(path, f"expected an object per line, got {type(obj).__name__}", row)
    return obj


def iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, stripped line) for each non-blank line."""
    try:
        with open_text(path) as f:
            for row, line in enumerate(f, start=1):
                line = line.strip()
                if line:
                    yield row, line
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(path, f"cannot be read to the end ({e})") from None


# ----- reviews -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reviews:
    """The interactions of a review file: parallel arrays, one entry per kept (user, item) pair."""

    users: np.ndarray  # reviewerID (str objects)
    asins: np.ndarray  # ASIN (str objects)
    times: np.ndarray  # unix seconds, int64
    lines_read: int
    duplicates_dropped: int


def _read_csv_ratings(path: Path) -> tuple[list, list, list]:
    users, asins, times = [], [], []
    for row, line in iter_lines(path):
        parts = line.split(",")
        if len(parts) != 4:
            raise DataError(
                path, f"expected 4 comma-separated fields (user, item, rating, time), got {len(parts)}", row
            )
        try:
            t = int(float(parts[3]))
        except ValueError:
            raise DataError(path, f"time {parts[3]!r} is not a number", row) from None
        if not parts[0] or not parts[1]:
            raise DataError(path, "empty user or item", row)
        users.append(parts[0])
        asins.append(parts[1])
        times.append(t)
    return users, asins, times


def _first_line(path: Path) -> str:
    for _, line in iter_lines(path):
        return line
    raise DataError(path, "the file is empty")


def read_reviews(path: Path) -> Reviews:
    """Read a review file (JSON lines or ratings CSV), one interaction per distinct (user, item)."""
    path = Path(path)
    if _first_line(path).startswith("{"):
        users, asins, times = [], [], []
        for row, line in iter_lines(path):
            rec = parse_record(line, path, row)
            for f in REVIEW_FIELDS:
                if f not in rec:
                    raise DataError(path, f"review lacks the field {f!r}", row)
            u, a, t = rec["reviewerID"], rec["asin"], rec["unixReviewTime"]
            if not isinstance(u, str) or not u or not isinstance(a, str) or not a:
                raise DataError(path, "reviewerID and asin must be non-empty strings", row)
            if isinstance(t, bool) or not isinstance(t, (int, float)):
                raise DataError(path, f"unixReviewTime {t!r} is not a number", row)
            users.append(u)
            asins.append(a)
            times.append(int(t))
    else:
        users, asins, times = _read_csv_ratings(path)
    n = len(users)
    if n == 0:
        raise DataError(path, "no reviews")
    df = pd.DataFrame({"u": users, "a": asins, "t": np.asarray(times, np.int64), "line": np.arange(n)})
    df = df.sort_values(["u", "a", "t", "line"], kind="stable")
    df = df[~df.duplicated(["u", "a"], keep="first")].sort_values("line", kind="stable")
    return Reviews(df["u"].to_numpy(object), df["a"].to_numpy(object), df["t"].to_numpy(np.int64), n, n - len(df))


def k_core(users: np.ndarray, items: np.ndarray, k: int) -> tuple[np.ndarray, int]:
    """Mask of the interactions in the k-core (integer codes in, fixed point) and passes made."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    keep = np.ones(len(users), bool)
    passes = 0
    while True:
        du = np.bincount(users[keep], minlength=int(users.max(initial=-1)) + 1)
        di = np.bincount(items[keep], minlength=int(items.max(initial=-1)) + 1)
        drop = keep & ((du[users] < k) | (di[items] < k))
        passes += 1
        if not drop.any():
            return keep, passes
        keep &= ~drop


# ----- metadata ------------------------------------------------------------------------------
def read_metadata(path: Path, wanted: set[str]) -> dict[str, dict]:
    """The metadata record of each wanted ASIN found in the file (the first one if repeated)."""
    path = Path(path)
    out: dict[str, dict] = {}
    for row, line in iter_lines(path):
        m = _ASIN_PATTERN.search(line)
        if m is None:
            # parse it to tell a malformed line from a record without an ASIN
            parse_record(line, path, row)
            raise DataError(path, "metadata record lacks the field 'asin'", row)
        asin = m.group(1)
        if asin not in wanted or asin in out:
            continue
        rec = parse_record(line, path, row)
        if rec.get("asin") != asin:
            raise DataError(path, f"metadata record's asin field is not a plain string ({rec.get('asin')!r})", row)
        out[asin] = rec
    return out


def _clean(s: object) -> str:
    if not isinstance(s, str):
        return ""
    return " ".join(html.unescape(s).split())


def item_text(rec: dict | None) -> str:
    """The sentence encoded for an item: title, brand, categories and description, in that order;
    empty when the item has none of them."""
    if not rec:
        return ""
    parts = []
    title, brand = _clean(rec.get("title")), _clean(rec.get("brand"))
    if title:
        parts.append(title.rstrip(".") + ".")
    if brand:
        parts.append(f"Brand: {brand}.")
    cats: list[str] = []
    raw = rec.get("categories") or []
    for group in raw if isinstance(raw, list) else []:
        for c in group if isinstance(group, list) else [group]:
            c = _clean(c)
            if c and c not in cats:
                cats.append(c)
    if cats:
        parts.append("Categories: " + ", ".join(cats) + ".")
    desc = _clean(rec.get("description"))
    if desc:
        parts.append(desc)
    return " ".join(parts)
