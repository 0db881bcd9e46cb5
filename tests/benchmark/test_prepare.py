"""Raw Amazon files to the MMRec layout: 5-core, both split conventions, features, checksums,
feature alignment, Table 1; every bad input named by file and row."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.data import DataError, amazon_raw, load_dataset, text_encoder
from benchmark.data.align import align_feature_file
from benchmark.data.image_binary import read_image_features, write_image_features
from benchmark.data.movielens import build_item_features, item_attributes, item_texts, load_movielens
from benchmark.data.prepare import prepare_amazon, verify_checksums
from benchmark.data.splits import random_split
from benchmark.data.stats import PAPER_TABLE1, table1

from ..conftest import shared_data_or_skip
from .raw_fixtures import DIM, asin, fake_encode, write_raw

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory):
    return write_raw(tmp_path_factory.mktemp("raw"))


def reference_core(pairs: list[tuple[str, str, int]], k: int) -> set[tuple[str, str]]:
    """The k-core the slow way: drop one offender at a time until none is left."""
    edges = {(u, a) for u, a, _ in pairs}
    while True:
        du, di = Counter(u for u, _ in edges), Counter(a for _, a in edges)
        bad = next(((u, a) for u, a in edges if du[u] < k or di[a] < k), None)
        if bad is None:
            return edges
        edges.discard(bad)


def build(raw, out: Path, **kw) -> dict:
    kw = {"meta": raw.meta, "images": raw.images, "encode": fake_encode, "image_dim": DIM, **kw}
    return prepare_amazon("Toy", raw.reviews, out, **kw)


# ----- reading and the 5-core --------------------------------------------------------------
def test_five_core_reaches_the_fixed_point(raw) -> None:
    r = amazon_raw.read_reviews(raw.reviews)
    assert r.lines_read == len(raw.pairs) and r.duplicates_dropped == 1
    u, _ = pd.factorize(r.users)
    i, _ = pd.factorize(r.asins)
    keep, passes = amazon_raw.k_core(u, i, 5)
    assert passes == 4  # user out, then the item it left short, then the user that item left short
    kept = set(zip(r.users[keep], r.asins[keep]))
    assert kept == reference_core(raw.pairs, 5)
    assert {"UX1", "UX2"}.isdisjoint(r.users[keep]) and {asin(90), asin(91)}.isdisjoint(r.asins[keep])
    assert min(Counter(r.users[keep]).values()) >= 5
    assert min(Counter(r.asins[keep]).values()) >= 5
    # the fixed point: filtering it again removes nothing
    again, passes = amazon_raw.k_core(u[keep], i[keep], 5)
    assert again.all() and passes == 1


def test_repeated_review_keeps_the_earliest(raw) -> None:
    r = amazon_raw.read_reviews(raw.reviews)
    u0, a0, t0 = raw.pairs[0]
    m = (r.users == u0) & (r.asins == a0)
    assert m.sum() == 1 and r.times[m][0] == t0


def test_metadata_python_literals_and_item_text(raw) -> None:
    recs = amazon_raw.read_metadata(raw.meta, {asin(0), asin(7), asin(9)})
    assert set(recs) == {asin(0), asin(9)}
    assert amazon_raw.item_text(recs[asin(0)]) == (
        "Thing number 0 & more. Brand: Brand0. Categories: Toy, Kind 0. A thing that does 0 things."
    )
    assert amazon_raw.item_text(recs[asin(9)]) == "Categories: Toy, Kind 0."
    assert amazon_raw.item_text(None) == ""


def test_ratings_csv_is_read(tmp_path: Path) -> None:
    p = tmp_path / "ratings_Toy.csv"
    p.write_text("A1,B000000001,5.0,1300000000\nA1,B000000002,4.0,1300000001\n")
    r = amazon_raw.read_reviews(p)
    assert list(r.users) == ["A1", "A1"] and list(r.times) == [1300000000, 1300000001]
    p.write_text("A1,B000000001,5.0\n")
    with pytest.raises(DataError, match=r"ratings_Toy.csv, row 1: expected 4 comma-separated"):
        amazon_raw.read_reviews(p)


@pytest.mark.parametrize(
    "line, words",
    [
        ('{"reviewerID": "A", "asin": "B000000001", "unixReviewTime": 5', "not a JSON object nor a Python dict"),
        ('{"reviewerID": "A", "unixReviewTime": 5}', "lacks the field 'asin'"),
        ('{"reviewerID": "A", "asin": "B000000001", "unixReviewTime": "soon"}', "is not a number"),
        ('["A", "B000000001", 5]', "expected an object per line"),
    ],
)
def test_malformed_review_lines(tmp_path: Path, line: str, words: str) -> None:
    p = tmp_path / "reviews.json.gz"
    good = '{"reviewerID": "A", "asin": "B000000000", "unixReviewTime": 1}'
    with gzip.open(p, "wt") as f:
        f.write(good + "\n\n" + line + "\n")
    with pytest.raises(DataError) as e:
        amazon_raw.read_reviews(p)
    assert "reviews.json.gz, row 3" in str(e.value) and words in str(e.value)


def test_malformed_metadata_lines(tmp_path: Path) -> None:
    p = tmp_path / "meta.json"
    p.write_text("{'asin': 'B000000000', 'title': 'ok'}\n{'asin': 'B000000001', 'title': 'broken\n")
    assert set(amazon_raw.read_metadata(p, {asin(0)})) == {asin(0)}  # unwanted lines are not parsed
    with pytest.raises(DataError, match=r"meta.json, row 2: not a JSON object nor a Python dict"):
        amazon_raw.read_metadata(p, {asin(1)})
    p.write_text("{'title': 'no asin'}\n")
    with pytest.raises(DataError, match=r"meta.json, row 1: metadata record lacks the field 'asin'"):
        amazon_raw.read_metadata(p, {asin(1)})


def test_truncated_gzip(tmp_path: Path, raw) -> None:
    p = tmp_path / "cut.json.gz"
    data = raw.reviews.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cut.json.gz: cannot be read to the end"):
        amazon_raw.read_reviews(p)


# ----- the image binary --------------------------------------------------------------------
def test_image_binary_round_trip(tmp_path: Path, raw) -> None:
    wanted = [asin(5), asin(97), asin(3), asin(0)]
    img = read_image_features(raw.images, wanted, dim=DIM, block=3)  # small blocks: crosses boundaries
    assert list(img.found) == [True, True, False, True]
    assert img.records == len(raw.image_rows) and img.repeats == 0
    for k, a in enumerate(wanted):
        if a in raw.image_rows:
            np.testing.assert_array_equal(img.features[k], raw.image_rows[a])
    assert not img.features[2].any()


def test_image_binary_errors(tmp_path: Path, raw) -> None:
    with pytest.raises(DataError, match=rf"image_features_Toy.b: 1 ASIN\(s\) have no record, first '{asin(3)}'"):
        read_image_features(raw.images, [asin(0), asin(3)], dim=DIM, strict=True)
    cut = tmp_path / "cut.b"
    cut.write_bytes(raw.images.read_bytes()[:-7])
    n = len(raw.image_rows)
    with pytest.raises(
        DataError, match=rf"cut.b, row {n}: truncated: .*the last record has only {10 + 4 * DIM - 7} bytes"
    ):
        read_image_features(cut, [asin(0)], dim=DIM)
    bad = tmp_path / "bad.b"
    bad.write_bytes(raw.images.read_bytes()[: 10 + 4 * DIM] + b"B0000\x00\x01abc" + bytes(4 * DIM))
    with pytest.raises(DataError, match=r"bad.b, row 2: record's ASIN field .* is not 10 letters or digits"):
        read_image_features(bad, [asin(0)], dim=DIM)
    rep = tmp_path / "rep.b"
    write_image_features(rep, [asin(0), asin(1), asin(0)], np.arange(3 * DIM, dtype=np.float32).reshape(3, DIM))
    img = read_image_features(rep, [asin(0)], dim=DIM)
    assert img.repeats == 1 and img.features[0, 0] == 0.0  # the first record wins


# ----- prepare -----------------------------------------------------------------------------
def test_prepare_lattice_split(tmp_path: Path, raw) -> None:
    out = tmp_path / "toy"
    s = build(raw, out, split="lattice", seed=3)
    core = reference_core(raw.pairs, 5)
    users, items = sorted({u for u, _ in core}), sorted({a for _, a in core})
    ds = load_dataset("toy", tmp_path)
    # nobody is lost: every 5-core user and item, every interaction, every user in train
    assert (ds.n_users, ds.n_items) == (len(users), len(items)) == (s["users"], s["items"])
    assert ds.train.nnz + ds.valid.nnz + ds.test.nnz == len(core) == s["interactions"]["all"]
    assert (np.diff(ds.train.indptr) > 0).all()
    # the LATTICE per-user counts: 1 + 1 below 10, else int(0.2 n) held out, the odd one to valid
    n = np.diff((ds.train + ds.valid + ds.test).tocsr().indptr)
    held = np.where(n < 10, 2, (0.2 * n).astype(int))
    np.testing.assert_array_equal(np.diff(ds.test.indptr), held // 2)
    np.testing.assert_array_equal(np.diff(ds.valid.indptr), held - held // 2)
    # dense ids in sorted raw-id order, written beside the split
    amap = pd.read_csv(out / "item_asin.tsv", sep="\t")
    assert list(amap["asin"]) == items and list(amap["itemID"]) == list(range(len(items)))
    assert list(pd.read_csv(out / "user_id.tsv", sep="\t")["reviewerID"]) == users
    # features: the image rows where there is an image, the mean elsewhere
    v = ds.features["v"]
    has = np.array([a in raw.image_rows for a in items])
    assert v.shape == (len(items), DIM) and (~has).sum() == 2
    np.testing.assert_array_equal(v[has], np.stack([raw.image_rows[a] for a in np.array(items)[has]]))
    np.testing.assert_allclose(v[~has], np.broadcast_to(v[has].mean(0), v[~has].shape), rtol=1e-6)
    t = ds.features["t"]
    assert t.shape == (len(items), 8)
    no_meta = [items.index(asin(7)), items.index(asin(8))]
    np.testing.assert_allclose(t[no_meta[0]], t[np.setdiff1d(np.arange(len(items)), no_meta)].mean(0), rtol=1e-5)
    assert s["features"]["visual"]["items_filled_with_mean"] == 2
    assert s["features"]["text"]["items_filled_with_mean"] == 2
    assert s["features"]["text"]["items_with_metadata"] == len(items) - 2
    assert s["k_core"] == {
        "k": 5,
        "passes": 4,
        "review_lines": len(raw.pairs),
        "duplicates_dropped": 1,
        "before": {"users": 42, "items": 22, "interactions": len(raw.pairs) - 1},
    }
    assert json.loads((out / "stats.json").read_text()) == s
    assert s["split"]["convention"] == "lattice" and s["split"]["seed"] == 3
    names = sorted(line.split("  ")[1] for line in (out / "SHA256SUMS").read_text().splitlines())
    assert names == ["image_feat.npy", "item_asin.tsv", "stats.json", "text_feat.npy", "toy.inter", "user_id.tsv"]
    assert verify_checksums(out) == []
    # the same inputs give the same files, byte for byte; another seed moves items, not counts
    sums = (out / "SHA256SUMS").read_text()
    build(raw, out, split="lattice", seed=3, force=True)
    assert (out / "SHA256SUMS").read_text() == sums
    build(raw, tmp_path / "again" / "toy", seed=4)
    other = load_dataset("toy", tmp_path / "again")
    assert (other.test != ds.test).nnz > 0
    np.testing.assert_array_equal(np.diff(other.test.indptr), np.diff(ds.test.indptr))
    (out / "toy.inter").write_text((out / "toy.inter").read_text() + "0\t0\t0\t1\n")
    assert verify_checksums(out) == ["toy.inter"]


def test_prepare_mmrec_split(tmp_path: Path, raw) -> None:
    s = build(raw, tmp_path / "toy", split="mmrec", images=None, text=False)
    assert s["features"] == {} and s["split"]["seed"] is None
    ds = load_dataset("toy", tmp_path)
    assert ds.features == {}
    df = pd.read_csv(tmp_path / "toy" / "toy.inter", sep="\t")
    assert list(df.columns) == ["userID", "itemID", "x_label", "timestamp"]
    for u, g in df.groupby("userID"):
        n = len(g)
        counts = g["x_label"].value_counts()
        assert counts.get(0, 0) == round(0.8 * n) and counts.get(1, 0) == round(0.1 * n)
        assert counts.get(2, 0) == n - round(0.8 * n) - round(0.1 * n)
        # chronological: in time order the labels run train, valid, test (a user with n = 6
        # has no test item: round(4.8) + round(0.6) = 6)
        assert (np.diff(g.sort_values(["timestamp", "itemID"]).x_label.to_numpy()) >= 0).all()
    assert df.userID.nunique() == ds.n_users and df.itemID.nunique() == ds.n_items


def test_prepare_refusals(tmp_path: Path, raw, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "toy"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(DataError, match="exists and is not empty"):
        build(raw, out)
    assert (out / "keep.txt").is_file()
    monkeypatch.setattr(text_encoder, "unavailable_reason", lambda: "the encoder is absent")
    with pytest.raises(DataError, match=r"meta_Toy.json.gz: cannot make text features: the encoder is absent"):
        build(raw, tmp_path / "t2", encode=None)
    other = tmp_path / "other.b"
    write_image_features(other, [asin(500)], np.ones((1, DIM), np.float32))
    with pytest.raises(DataError, match=r"other.b: no item of the dataset has an image here"):
        prepare_amazon("Toy", raw.reviews, tmp_path / "t3", images=other, image_dim=DIM)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.b", "toy"]  # no half-made folder left


# ----- feature alignment -------------------------------------------------------------------
def write_map(path: Path, ids: list[int], keys: list[str], header: str = "itemID\tasin") -> Path:
    path.write_text(header + "\n" + "".join(f"{i}\t{k}\n" for i, k in zip(ids, keys)))
    return path


def test_align_features(tmp_path: Path) -> None:
    keys = [asin(j) for j in (5, 1, 9, 3)]  # item i of the split has key keys[i]
    key_map = write_map(tmp_path / "item_asin.tsv", [2, 0, 1, 3], [keys[2], keys[0], keys[1], keys[3]])
    sorted_keys = sorted(keys)
    feats = np.array([[sorted_keys.index(k)] * 3 for k in sorted_keys], np.float16)  # row r: value r
    np.save(tmp_path / "f.npy", feats)
    report = align_feature_file(tmp_path / "f.npy", key_map, tmp_path / "out.npy")
    got = np.load(tmp_path / "out.npy")
    assert got.dtype == np.float16 and report == {"items": 4, "feature_rows": 4, "rows_unused": 0}
    assert list(got[:, 0]) == [sorted_keys.index(k) for k in keys]
    # explicit row keys (MMRec's i_id_mapping.csv: asin, itemID), with a row no item uses
    rows = [asin(9), asin(7), asin(1), asin(5), asin(3)]
    rk = tmp_path / "i_id_mapping.csv"
    rk.write_text("asin\titemID\n" + "".join(f"{k}\t{r}\n" for r, k in enumerate(rows)))
    np.save(tmp_path / "g.npy", np.arange(5, dtype=np.float32)[:, None])
    report = align_feature_file(tmp_path / "g.npy", key_map, tmp_path / "out.npy", rk)
    assert report["rows_unused"] == 1
    assert list(np.load(tmp_path / "out.npy")[:, 0]) == [rows.index(k) for k in keys]


@pytest.mark.parametrize(
    "ids, keys, rows, words",
    [
        (
            [0, 1, 2, 3],
            [asin(1), asin(2), asin(1), asin(4)],
            4,
            rf"item_asin.tsv, row 4: asin {asin(1)} is repeated \(first at row 2\)",
        ),
        (
            [0, 1, 1, 3],
            [asin(1), asin(2), asin(3), asin(4)],
            4,
            r"item_asin.tsv, row 4: itemID 1 is repeated \(first at row 3\)",
        ),
        ([0, 1, 2, 7], [asin(1), asin(2), asin(3), asin(4)], 4, r"row 5: itemID 7 is beyond 3"),
        ([0, 1, 2, 3], [asin(1), asin(2), asin(3), asin(4)], 3, r"f.npy: 3 feature rows but the key map has 4"),
    ],
)
def test_align_refuses(tmp_path: Path, ids, keys, rows, words) -> None:
    key_map = write_map(tmp_path / "item_asin.tsv", ids, keys)
    np.save(tmp_path / "f.npy", np.zeros((rows, 2), np.float32))
    with pytest.raises(DataError, match=words):
        align_feature_file(tmp_path / "f.npy", key_map, tmp_path / "out.npy")
    assert not (tmp_path / "out.npy").exists()


def test_align_refuses_missing_keys(tmp_path: Path) -> None:
    key_map = write_map(tmp_path / "item_asin.tsv", [0, 1], [asin(1), asin(2)])
    rk = write_map(tmp_path / "rows.tsv", [0, 1], [asin(2), asin(3)])
    np.save(tmp_path / "f.npy", np.zeros((2, 2), np.float32))
    with pytest.raises(
        DataError, match=rf"item_asin.tsv, row 2: 1 key\(s\) have no feature row; first: item 0, key '{asin(1)}'"
    ):
        align_feature_file(tmp_path / "f.npy", key_map, tmp_path / "out.npy", rk)
    write_map(tmp_path / "bad.tsv", [0, 1], [asin(1), asin(2)], header="id\tasin")
    with pytest.raises(DataError, match=r"bad.tsv, row 1: expected two tab-separated columns"):
        align_feature_file(tmp_path / "f.npy", tmp_path / "bad.tsv", tmp_path / "out.npy")


# ----- the command line --------------------------------------------------------------------
def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "benchmark.data", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_cli_prepare_stats_and_errors(tmp_path: Path, raw) -> None:
    out = tmp_path / "toy"
    p = run_cli(
        "prepare",
        "amazon",
        "--category",
        "Toy",
        "--reviews",
        str(raw.reviews),
        "--images",
        str(raw.images),
        "--image-dim",
        str(DIM),
        "--split",
        "mmrec",
        "--out",
        str(out),
    )
    assert p.returncode == 0, p.stderr
    assert "toy: 40 users, 20 items" in p.stdout and (out / "image_feat.npy").is_file()
    p = run_cli("stats", str(out), "--json")
    row = json.loads(p.stdout)[0]
    assert p.returncode == 0 and (row["users"], row["items"], row["modalities"]) == (40, 20, "visual")
    p = run_cli(
        "prepare", "amazon", "--category", "Toy", "--reviews", str(tmp_path / "nope.json"), "--out", str(tmp_path / "x")
    )
    assert p.returncode == 2 and p.stderr.strip().splitlines()[-1] == f"error: {tmp_path / 'nope.json'}: file not found"


# ----- Table 1 -----------------------------------------------------------------------------
def test_table1_on_presets() -> None:
    df = table1(["synthetic-tiny"], None)
    assert df.loc[0, "users"] == 160 and df.loc[0, "synthetic"] and pd.isna(df.loc[0, "matches_paper"])


def test_table1_reproduces_the_paper() -> None:
    root = shared_data_or_skip("amazon-baby")
    for name in ("amazon-sports", "amazon-clothing"):
        shared_data_or_skip(name)
    df = table1(list(PAPER_TABLE1), root).set_index("dataset")
    for name, row in PAPER_TABLE1.items():
        assert (df.loc[name, "users"], df.loc[name, "items"], df.loc[name, "interactions"]) == (
            row["users"],
            row["items"],
            row["interactions"],
        )
    assert df["matches_paper"].all()


def test_lattice_convention_matches_the_released_splits() -> None:
    """The odd held-out item goes to valid in LATTICE's files: `random_split(valid_rounds_up=True)`."""
    root = shared_data_or_skip("amazon-baby")
    ds = load_dataset("amazon-baby", root)
    full = (ds.train + ds.valid + ds.test).tocoo()
    split = random_split(full.row.astype(np.int64), np.random.default_rng(0), valid_rounds_up=True)
    for s, m in ((1, ds.valid), (2, ds.test)):
        np.testing.assert_array_equal(np.bincount(full.row[split == s], minlength=ds.n_users), np.diff(m.indptr))


# ----- MovieLens-100K features (the encoder replaced by a stand-in) -------------------------
def write_movielens(folder: Path) -> Path:
    folder.mkdir()
    (folder / "u.data").write_text("".join(f"{u}\t{i}\t4\t{100 + i}\n" for u in (1, 2) for i in range(1, 21)))
    genre = ["0"] * 19
    lines = []
    for i in range(1, 21):
        g = genre.copy()
        g[1 + i % 3] = "1"
        date = "" if i == 20 else f"01-Jan-19{40 + 2 * i}"
        lines.append("|".join([str(i), f"Film {i} (19{40 + 2 * i})", date, "", "http://x"] + g))
    (folder / "u.item").write_bytes("\n".join(lines).encode("latin-1") + b"\n")
    return folder


def test_movielens_text_features_from_the_cache(tmp_path: Path) -> None:
    d = write_movielens(tmp_path / "ml")
    ds = load_movielens(d, "ml")
    assert ds.features == {} and "no text features yet" in ds.source
    assert item_texts(d)[0] == "Film 1 (1942). Genres: Adventure."
    x, names = item_attributes(d)
    assert x.shape == (20, 19 + 4) and names[19:] == ["decade:1940s", "decade:1950s", "decade:1960s", "decade:1970s"]
    assert x[0, [2, 19]].tolist() == [1.0, 1.0] and x[19, 19:].sum() == 0  # no date, no decade
    cache = build_item_features(d, encode=fake_encode)
    assert np.load(cache / "attr_feat.npy").shape == (20, 23)
    ds = load_movielens(d, "ml")
    assert ds.features["t"].shape == (20, 8) and "fake_encode" in ds.source
    assert load_movielens(d, "ml", text="off").features == {}
    # another u.item is another cache entry
    with open(d / "u.item", "ab") as f:
        f.write(b"21|Film 21 (1999)|01-Jan-1999||http://x|" + b"|".join([b"0"] * 19) + b"\n")
    assert load_movielens(d, "ml").features == {}


def test_movielens_bad_item_file(tmp_path: Path) -> None:
    d = write_movielens(tmp_path / "ml")
    text = (d / "u.item").read_text(encoding="latin-1").replace("3|Film 3", "4|Film 3")
    (d / "u.item").write_text(text, encoding="latin-1")
    with pytest.raises(DataError, match=r"u.item, row 3: movie id '4' where 3 was expected"):
        item_texts(d)
