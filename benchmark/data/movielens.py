"""Reader for MovieLens-100K's original files (``u.data``; ``u.item`` is checked for the item count).

Implicit feedback: every rating, whatever its value, is one interaction. Split per user,
chronologically (timestamp, then item id to break ties): the first ``round(0.8 n)`` interactions
train, the next ``round(0.1 n)`` valid, the rest test; every ML-100K user has at least 20 ratings,
so each split gets at least two of every user's items. Ids in the files start at 1 and are
shifted to start at 0.

Item features (text modality ``"t"``): each movie's title and genre names ("Toy Story (1995).
Genres: Animation, Children's, Comedy.") encoded by the suite's Sentence-BERT encoder
(`benchmark.data.text_encoder`, 384-d, the optional extra ``text``). Encoding is not done at
load time: ``python -m benchmark.data prepare movielens --folder DIR`` (or `build_item_features`)
writes them to the suite's cache (``benchmark.paths.cache_dir()/ml-100k/<u.item sha256>-minilm-f64``,
never beside the data, which may be read-only), keyed by the checksum of ``u.item``. Loading:

- ``text="auto"`` (the default, what the registry uses): attach the cached text features when
  the cache holds them for this ``u.item``; otherwise load without features (the ``source`` line
  says how to build them). Loading never needs the encoder.
- ``text="build"``: build the cache first when it is missing (needs the encoder), then attach.
- ``text="off"``: never attach.

The genre / release-decade attribute feature (19 genre flags, then one flag per release decade
from the file's first to its last; the movie without a date has no decade flag) is not a
modality of the suite (``MODALITIES`` stays visual / text / acoustic, which every model reads):
it is a separate array, computed from ``u.item`` by `item_attributes` (no encoder needed) and
also written beside the cached text features (``attr_feat.npy``, names in ``features.json``) for
models that want item attributes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..paths import cache_dir
from .checks import ids_in_range, int_column, load_feature, no_duplicates, require_file
from .dataset import Dataset, from_triples
from .errors import DataError
from .splits import chronological_split

GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
TEXT_MODES = ("auto", "build", "off")
Encoder = Callable[[Sequence[str]], np.ndarray]


def read_items(folder: Path) -> tuple[list[str], list[int | None], np.ndarray, list[str]]:
    """``u.item`` (Latin-1, ``|``-separated): titles, release years (None when absent), the
    (n, 19) genre flags and the genre names (from ``u.genre`` when present)."""
    folder = Path(folder)
    path = require_file(folder / "u.item")
    names = list(GENRES)
    gpath = folder / "u.genre"
    if gpath.is_file():
        lines = [ln for ln in gpath.read_text(encoding="latin-1").splitlines() if ln.strip()]
        names = [ln.rsplit("|", 1)[0] for ln in lines]
        if len(names) != len(GENRES):
            raise DataError(gpath, f"expected {len(GENRES)} genres, found {len(names)}")
    titles, years, flags = [], [], []
    for row, line in enumerate(path.read_text(encoding="latin-1").splitlines(), start=1):
        if not line.strip():
            continue
        f = line.split("|")
        if len(f) != 5 + len(GENRES):
            raise DataError(path, f"expected {5 + len(GENRES)} '|'-separated fields, got {len(f)}", row)
        if f[0] != str(len(titles) + 1):
            raise DataError(path, f"movie id {f[0]!r} where {len(titles) + 1} was expected (ids run 1..n)", row)
        g = f[5:]
        if any(x not in ("0", "1") for x in g):
            raise DataError(path, "genre flags must be 0 or 1", row)
        date = f[2].strip()
        if date and not (len(date) >= 4 and date[-4:].isdigit()):
            raise DataError(path, f"release date {date!r} does not end in a year", row)
        titles.append(f[1].strip())
        years.append(int(date[-4:]) if date else None)
        flags.append([int(x) for x in g])
    if not titles:
        raise DataError(path, "no movies")
    return titles, years, np.asarray(flags, np.int8), names


def item_texts(folder: Path) -> list[str]:
    """The sentence encoded for each movie: its title and its genre names."""
    titles, _, flags, names = read_items(folder)
    return [f"{t}. Genres: {', '.join(names[j] for j in np.nonzero(g)[0])}." for t, g in zip(titles, flags)]


def item_attributes(folder: Path) -> tuple[np.ndarray, list[str]]:
    """(n_items, 19 + decades) float32 genre and release-decade flags, and the column names."""
    _, years, flags, names = read_items(folder)
    known = [y for y in years if y is not None]
    decades = list(range(min(known) // 10 * 10, max(known) // 10 * 10 + 1, 10)) if known else []
    dec = np.zeros((len(years), len(decades)), np.float32)
    for i, y in enumerate(years):
        if y is not None:
            dec[i, (y // 10 * 10 - decades[0]) // 10] = 1.0
    x = np.concatenate([flags.astype(np.float32), dec], axis=1)
    return x, [f"genre:{n}" for n in names] + [f"decade:{d}s" for d in decades]


def features_dir(folder: Path) -> Path:
    """Where this ``u.item``'s features are cached (the path depends on its content only)."""
    digest = hashlib.sha256(require_file(Path(folder) / "u.item").read_bytes()).hexdigest()
    return cache_dir() / "ml-100k" / f"{digest[:16]}-minilm-f64"


def build_item_features(folder: Path, encode: Encoder | None = None, device: str = "cpu") -> Path:
    """Encode the item texts and write ``text_feat.npy``, ``attr_feat.npy`` and ``features.json``
    to the cache; returns the cache folder. ``encode`` replaces the Sentence-BERT encoder (tests)."""
    from . import text_encoder

    folder = Path(folder)
    texts = item_texts(folder)
    attrs, attr_names = item_attributes(folder)
    if encode is None:
        info = text_encoder.encoder_info()
        text = text_encoder.encode(texts, device=device)
    else:
        info = {"name": getattr(encode, "__name__", "custom"), "dim": None}
        text = np.asarray(encode(texts), np.float32)
    out = features_dir(folder)
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "u.item sha256": hashlib.sha256((folder / "u.item").read_bytes()).hexdigest(),
        "items": len(texts),
        "text": {
            "file": "text_feat.npy",
            "encoder": info,
            "dim": int(text.shape[1]),
            "input": "title. Genres: genre names.",
        },
        "attributes": {"file": "attr_feat.npy", "columns": attr_names},
    }
    for fname, arr in (("attr_feat.npy", attrs), ("text_feat.npy", text)):
        tmp = out / f".{fname}.tmp.npy"
        np.save(tmp, arr)
        os.replace(tmp, out / fname)
    tmp = out / ".features.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp, out / "features.json")
    return out


def cached_text_features(folder: Path, n_items: int) -> np.ndarray | None:
    """The cached text features for this ``u.item``, or None when there are none yet."""
    try:
        d = features_dir(folder)
    except OSError:  # an unwritable cache location holds nothing
        return None
    # features.json is written last: without it the cache is incomplete
    if not (d / "features.json").is_file() or not (d / "text_feat.npy").is_file():
        return None
    return load_feature(d / "text_feat.npy", n_items)


def load_movielens(folder: Path, name: str, text: str = "auto") -> Dataset:
    if text not in TEXT_MODES:
        raise ValueError(f"text must be one of {TEXT_MODES}, got {text!r}")
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
    features, note = {}, ""
    if text != "off" and item_file.is_file():
        t = cached_text_features(folder, n_items)
        if t is None and text == "build":
            build_item_features(folder)
            t = cached_text_features(folder, n_items)
        if t is not None:
            features["t"] = t
            meta = json.loads((features_dir(folder) / "features.json").read_text())
            note = f"; text features: title + genres, {meta['text']['encoder']['name']}"
        else:
            note = "; no text features yet (python -m benchmark.data prepare movielens --folder DIR)"
    return from_triples(
        name,
        users,
        items,
        split,
        int(users.max()) + 1,
        n_items,
        features,
        times,
        source=f"MovieLens-100K at {folder} (implicit, per-user chronological 8:1:1){note}",
    )
