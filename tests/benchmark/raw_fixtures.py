"""Small raw Amazon 2014 files written by the tests: reviews, metadata, an image feature binary.

A core of 40 users x 20 items where everyone is well above 5 interactions, plus a fringe that
the 5-core filter peels off in a cascade (a user with 4 reviews, then an item left with 4, then a
user left with 4), a repeated review, items without an image, items without metadata, and
metadata / image records of items that are not in the reviews.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark.data.image_binary import write_image_features

DIM = 16


def asin(j: int) -> str:
    return f"B{j:09d}"


@dataclass
class RawFiles:
    reviews: Path
    meta: Path
    images: Path
    pairs: list[tuple[str, str, int]]  # every review line (user, asin, time), repeats included
    image_rows: dict[str, np.ndarray]


def review_pairs(seed: int = 0) -> list[tuple[str, str, int]]:
    rng = np.random.default_rng(seed)
    pairs = []
    for u in range(40):
        n = int(rng.integers(6, 15))
        for j in rng.choice(20, size=n, replace=False):
            pairs.append((f"U{u:03d}", asin(int(j)), int(1_300_000_000 + rng.integers(0, 10**7))))
    # fringe: UX1 has 4 reviews (out at pass 1), one of them on item 90, which then has 4 (out at
    # pass 2), taking one review from UX2, who then has 4 (out at pass 3)
    pairs += [("UX1", asin(90), 1_400_000_000)] + [("UX1", asin(j), 1_400_000_001 + j) for j in (0, 1, 2)]
    pairs += [(f"U{u:03d}", asin(90), 1_400_000_100 + u) for u in (0, 1, 2)]
    pairs += [("UX2", asin(90), 1_400_000_200)] + [("UX2", asin(j), 1_400_000_201 + j) for j in (3, 4, 5, 6)]
    # an item with 3 reviews only, and a repeated review (later time: dropped)
    pairs += [(f"U{u:03d}", asin(91), 1_400_000_300 + u) for u in (5, 6, 7)]
    pairs.append((pairs[0][0], pairs[0][1], pairs[0][2] + 50))
    return pairs


def write_raw(folder: Path, seed: int = 0) -> RawFiles:
    folder.mkdir(parents=True, exist_ok=True)
    pairs = review_pairs(seed)
    reviews = folder / "reviews_Toy.json.gz"
    with gzip.open(reviews, "wt") as f:
        for u, a, t in pairs:
            f.write(
                json.dumps(
                    {
                        "reviewerID": u,
                        "asin": a,
                        "reviewerName": "x",
                        "helpful": [0, 0],
                        "reviewText": "fine",
                        "overall": 4.0,
                        "summary": "ok",
                        "unixReviewTime": t,
                        "reviewTime": "01 1, 2013",
                    }
                )
                + "\n"
            )
    # the 2014 metadata is Python literals: single quotes, lists of lists for categories
    meta = folder / "meta_Toy.json.gz"
    with gzip.open(meta, "wt") as f:
        for j in list(range(20)) + [90, 99]:
            if j in (7, 8):
                continue  # no metadata at all
            rec = {"asin": asin(j), "categories": [["Toy", f"Kind {j % 3}"], ["Toy"]]}
            if j != 9:  # item 9: categories only
                rec.update(
                    title=f"Thing number {j} &amp; more",
                    brand=f"Brand{j % 4}",
                    description=f"A thing\nthat does {j} things.",
                )
            f.write(repr(rec) + "\n")
    rng = np.random.default_rng(seed + 1)
    image_rows = {asin(j): rng.random(DIM).astype(np.float32) for j in list(range(20)) + [97, 98] if j not in (3, 11)}
    images = folder / "image_features_Toy.b"
    write_image_features(images, list(image_rows), np.stack(list(image_rows.values())))
    return RawFiles(reviews, meta, images, pairs, image_rows)


def fake_encode(texts: list[str]) -> np.ndarray:
    """A deterministic stand-in for Sentence-BERT: 8 numbers from each text's characters."""
    out = np.zeros((len(texts), 8), np.float32)
    for i, t in enumerate(texts):
        b = np.frombuffer(t.encode(), np.uint8).astype(np.float32)
        out[i] = [len(t), b.mean(), b.std(), b[:5].sum(), b[-5:].sum(), t.count(" "), t.count("."), 1.0]
    return out
