"""Reader for MovieLens-100K's original files (``u.data``; ``u.item`` is checked for the item count).

Implicit feedback: every rating, whatever its value, is one interaction. Split per user,
chronologically (timestamp, then item id to break ties): the first ``round(0.8 n)`` interactions
train, the next ``round(0.1 n)`` valid, the rest test; every ML-100K user has at least 20 ratings,
so each split gets at least two of every user's items. Ids in the files start at 1 and are
shifted to start at 0.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .checks import ids_in_range, int_column, no_duplicates, require_file
from .dataset import Dataset, from_triples
from .errors import DataError
from .splits import chronological_split


def load_movielens(folder: Path, name: str) -> Dataset:
    folder = Path(folder)
    path = require_file(folder / "u.data")
    try:
        df = pd.read_csv(path, sep="\t", header=None, dtype=str, keep_default_na=False)
    except pd.errors.ParserError as e:
        raise DataError(path, f"wrong number of columns ({e})") from None
    if df.shape[1] != 4:
        raise DataError(path, f"expected 4 tab-separated columns (user, item, rating, time), got {df.shape[1]}", 1)
    users = int_column(df[0], path, "user", first_row=1) - 1
    items = int_column(df[1], path, "item", first_row=1) - 1
    times = int_column(df[3], path, "timestamp", first_row=1)
    for arr, col in ((users, "user"), (items, "item")):
        if (arr < 0).any():
            raise DataError(path, f"column {col!r}: ids start at 1, found 0", int(np.nonzero(arr < 0)[0][0]) + 1)
    no_duplicates(users, items, path, first_row=1)
    n_items = int(items.max()) + 1
    item_file = folder / "u.item"
    if item_file.is_file():
        n_listed = sum(1 for line in item_file.read_bytes().splitlines() if line.strip())
        ids_in_range(items, n_listed, path, "item", "movies listed in u.item", first_row=1)
        n_items = n_listed
    split = chronological_split(users, times, items)
    return from_triples(name, users, items, split, int(users.max()) + 1, n_items, None, times,
                        source=f"MovieLens-100K at {folder} (implicit, per-user chronological 8:1:1)")
