"""Build a dataset of the paper from the raw Amazon 2014 files, in the MMRec layout.

``prepare_amazon`` (``python -m benchmark.data prepare amazon ...``):

1. read the reviews, one interaction per (user, item) (`amazon_raw.read_reviews`);
2. k-core filter to its fixed point (k = 5);
3. dense ids, users by ``reviewerID`` and items by ASIN in sorted order;
4. split per user: ``lattice`` = random order, below 10 interactions one valid and one test,
   else ``int(0.2 n)`` held out with the odd one to valid (what LATTICE's released splits hold;
   `splits.random_split` with ``valid_rounds_up``), seeded by ``seed``; ``mmrec`` = chronological
   8:1:1 (`splits.chronological_split`, item id breaking ties);
5. visual features: the rows of the 4096-d image binary for the dataset's ASINs; items without
   an image get the mean of the others (counted);
6. text features: Sentence-BERT (`text_encoder`) over ``title. Brand: b. Categories: c1, c2.
   description`` (`amazon_raw.item_text`); items without metadata (or with none of those fields)
   get the mean of the others (counted);
7. write, into ``out``: ``<name>.inter`` (``userID itemID x_label timestamp``, tab-separated),
   ``image_feat.npy`` / ``text_feat.npy`` (float32), ``item_asin.tsv`` and ``user_id.tsv`` (the
   raw id of each dense id), ``stats.json`` (counts per split, density, k-core passes, feature
   coverage, encoder, inputs' names and sizes) and ``SHA256SUMS`` (``sha256sum -c`` format);
8. load the result back with the MMRec reader, and check its counts, before it is moved in place.

Everything is built in a temporary folder beside ``out`` and renamed at the end, so a failure
leaves no half-made dataset; an existing non-empty ``out`` is refused unless ``force``.
``stats.json`` holds no absolute path and no time, so two builds from the same files have the
same ``.inter``, maps and statistics, byte for byte (float features may differ in the last bits
across machines).

With the published 5-core review files (``reviews_Baby_5.json.gz`` ...) the filter removes
nothing and the ``lattice`` split gives the paper's Table 1 users, items and train + test counts.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from . import amazon_raw, image_binary, text_encoder
from .errors import DataError
from .mmrec import load_mmrec
from .splits import chronological_split, random_split
from .stats import split_stats

SPLITS = ("lattice", "mmrec")
SPLIT_RULES = {
    "lattice": "per user, random order: below 10 interactions 1 valid + 1 test; else int(0.2 n) held out, "
    "test held // 2, valid the rest",
    "mmrec": "per user, chronological (item id breaks ties): round(0.8 n) train, round(0.1 n) valid, the rest test",
}
Encoder = Callable[[Sequence[str]], np.ndarray]
Log = Callable[[str], None]


def short_name(category: str) -> str:
    """``Baby`` -> ``baby``, ``Sports_and_Outdoors`` -> ``sports``, ``Clothing_Shoes_and_Jewelry`` -> ``clothing``."""
    name = category.split("_")[0].strip().lower()
    if not name or not name.replace("-", "").isalnum():
        raise ValueError(f"category {category!r} does not give a usable dataset name")
    return name


def sha256_file(path: Path, block: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def write_checksums(folder: Path) -> Path:
    """``SHA256SUMS`` over every other file of the folder, in ``sha256sum -c`` format."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name != "SHA256SUMS")
    out = folder / "SHA256SUMS"
    out.write_text("".join(f"{sha256_file(p)}  {p.name}\n" for p in files))
    return out


def verify_checksums(folder: Path) -> list[str]:
    """Names of the files whose checksum differs from ``SHA256SUMS`` (or that are missing)."""
    bad = []
    for line in (folder / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ", 1)
        p = folder / name
        if not p.is_file() or sha256_file(p) != digest:
            bad.append(name)
    return bad


def _input(path: Path | None) -> dict[str, object] | None:
    return None if path is None else {"name": Path(path).name, "bytes": Path(path).stat().st_size}


def _quiet(_: str) -> None:
    pass


def prepare_amazon(
    category: str,
    reviews: Path,
    out: Path,
    meta: Path | None = None,
    images: Path | None = None,
    split: str = "lattice",
    seed: int = 0,
    k: int = 5,
    text: bool = True,
    encode: Encoder | None = None,
    device: str = "cpu",
    image_dim: int = image_binary.DEFAULT_DIM,
    force: bool = False,
    log: Log = _quiet,
) -> dict[str, object]:
    """Build one Amazon dataset into ``out``; returns what ``stats.json`` holds.

    ``meta`` and ``images`` are optional (no text / visual features without them); ``text=False``
    skips the encoder even with ``meta``. ``encode`` replaces the Sentence-BERT encoder (tests).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    name = short_name(category)
    reviews, out = Path(reviews), Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise DataError(out, "exists and is not empty (use --force to replace it)")
    want_text = text and meta is not None
    if want_text and encode is None:
        reason = text_encoder.unavailable_reason()
        if reason:
            raise DataError(meta, f"cannot make text features: {reason}; or pass --no-text")

    log(f"reading reviews {reviews}")
    r = amazon_raw.read_reviews(reviews)
    u_codes, u_names = pd.factorize(r.users, sort=True)
    i_codes, i_names = pd.factorize(r.asins, sort=True)
    keep, passes = amazon_raw.k_core(u_codes, i_codes, k)
    before = {"users": len(u_names), "items": len(i_names), "interactions": int(len(u_codes))}
    if not keep.any():
        raise DataError(reviews, f"nothing is left after the {k}-core filter")
    users, user_ids = pd.factorize(r.users[keep], sort=True)
    items, asins = pd.factorize(r.asins[keep], sort=True)
    times = r.times[keep]
    log(
        f"{k}-core: {before['users']:,} users / {before['items']:,} items / {before['interactions']:,} "
        f"interactions -> {len(user_ids):,} / {len(asins):,} / {len(users):,} ({passes} passes)"
    )

    if split == "lattice":
        labels = random_split(users, np.random.default_rng(seed), valid_rounds_up=True)
    else:
        labels = chronological_split(users, times, items)
    no_train = np.setdiff1d(np.arange(len(user_ids)), users[labels == 0])
    if no_train.size:
        raise DataError(
            reviews,
            f"{no_train.size} users have no training interaction after the split "
            f"(k={k} is too small for the {split} convention)",
        )

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp's 0700 would stay on the renamed folder
        order = np.lexsort((items, times, users))
        pd.DataFrame(
            {"userID": users[order], "itemID": items[order], "x_label": labels[order], "timestamp": times[order]}
        ).to_csv(tmp / f"{name}.inter", sep="\t", index=False)
        pd.DataFrame({"itemID": np.arange(len(asins)), "asin": asins}).to_csv(
            tmp / "item_asin.tsv", sep="\t", index=False
        )
        pd.DataFrame({"userID": np.arange(len(user_ids)), "reviewerID": user_ids}).to_csv(
            tmp / "user_id.tsv", sep="\t", index=False
        )
        features: dict[str, object] = {}
        if images is not None:
            log(f"reading image features {images}")
            img = image_binary.read_image_features(images, list(asins), dim=image_dim)
            x = image_binary.fill_missing_with_mean(img.features, img.found, "an image", images)
            np.save(tmp / "image_feat.npy", x)
            n_own = int(img.found.sum())
            features["visual"] = {
                "file": "image_feat.npy",
                "dim": image_dim,
                "items_with_image": n_own,
                "items_filled_with_mean": len(asins) - n_own,
                "coverage": n_own / len(asins),
                "records_in_file": img.records,
                "repeated_records": img.repeats,
            }
            log(f"visual: {n_own:,} of {len(asins):,} items have an image; {len(asins) - n_own:,} get the mean vector")
        if want_text:
            log(f"reading metadata {meta}")
            recs = amazon_raw.read_metadata(meta, set(asins))
            texts = [amazon_raw.item_text(recs.get(a)) for a in asins]
            has = np.array([bool(t) for t in texts])
            if not has.any():
                raise DataError(meta, "no item of the dataset has a title, brand, categories or description here")
            log(f"encoding {int(has.sum()):,} item texts")
            idx = np.nonzero(has)[0]
            if encode is None:
                enc = text_encoder.encode([texts[i] for i in idx], device=device)
                info = text_encoder.encoder_info()
            else:
                enc = np.asarray(encode([texts[i] for i in idx]), np.float32)
                info = {"name": getattr(encode, "__name__", "custom"), "dim": int(enc.shape[1])}
            x = np.zeros((len(asins), enc.shape[1]), np.float32)
            x[idx] = enc
            x = image_binary.fill_missing_with_mean(x, has, "text", meta)
            np.save(tmp / "text_feat.npy", x)
            n_own = int(has.sum())
            features["text"] = {
                "file": "text_feat.npy",
                "dim": int(enc.shape[1]),
                "encoder": info,
                "input": "title. Brand: brand. Categories: c1, c2. description",
                "items_with_metadata": len(recs),
                "items_with_text": n_own,
                "items_filled_with_mean": len(asins) - n_own,
                "coverage": n_own / len(asins),
            }
            log(f"text: {n_own:,} of {len(asins):,} items have text; {len(asins) - n_own:,} get the mean vector")

        ds = load_mmrec(tmp, name)
        if (ds.n_users, ds.n_items, ds.train.nnz + ds.valid.nnz + ds.test.nnz) != (
            len(user_ids),
            len(asins),
            len(users),
        ):
            raise DataError(tmp, "the written dataset does not load back with the counts it was built with")
        stats = {
            "dataset": name,
            "category": category,
            **split_stats(ds),
            "split": {"convention": split, "rule": SPLIT_RULES[split], "seed": seed if split == "lattice" else None},
            "k_core": {
                "k": k,
                "passes": passes,
                "review_lines": r.lines_read,
                "duplicates_dropped": r.duplicates_dropped,
                "before": before,
            },
            "features": features,
            "inputs": {
                "reviews": _input(reviews),
                "meta": _input(meta) if want_text else None,
                "images": _input(images),
            },
        }
        (tmp / "stats.json").write_text(json.dumps(stats, indent=2) + "\n")
        write_checksums(tmp)
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"wrote {out}")
    return stats


def prepare_movielens(folder: Path, device: str = "cpu", log: Log = _quiet) -> Path:
    """Build (or rebuild) the cached ML-100K text and attribute features; returns the cache folder."""
    from .movielens import build_item_features

    folder = Path(folder)
    reason = text_encoder.unavailable_reason()
    if reason:
        raise DataError(folder, f"cannot make text features: {reason}")
    log(f"encoding the titles and genres of {folder / 'u.item'}")
    return build_item_features(folder, device=device)


def stderr_log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
