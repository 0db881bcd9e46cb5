"""Every reader's bad-input errors name the file, the row and the problem; good input loads."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from benchmark.data import DataError, load_dataset
from benchmark.data.lattice import load_lattice
from benchmark.data.mmrec import load_mmrec
from benchmark.data.movielens import load_movielens

from ..conftest import shared_data_or_skip

GOOD = "userID\titemID\tx_label\n0\t0\t0\n0\t1\t1\n0\t2\t2\n1\t1\t0\n1\t2\t1\n1\t0\t2\n"


def write_mmrec(tmp: Path, text: str, feats: dict[str, np.ndarray] | None = None) -> Path:
    d = tmp / "toy"
    d.mkdir(exist_ok=True)
    (d / "toy.inter").write_text(text)
    for name, arr in (feats or {}).items():
        np.save(d / name, arr)
    return d


def test_mmrec_good(tmp_path: Path) -> None:
    d = write_mmrec(tmp_path, GOOD, {"image_feat.npy": np.ones((4, 3), np.float16)})
    ds = load_mmrec(d, "toy")
    assert (ds.n_users, ds.n_items) == (2, 4)
    assert ds.train.nnz == 2 and ds.valid.nnz == 2 and ds.test.nnz == 2
    assert ds.features["v"].dtype == np.float32


@pytest.mark.parametrize(
    "text, row, words",
    [
        ("user\titemID\tx_label\n0\t0\t0\n", 1, "header lacks"),
        (GOOD + "2\tx\t0\n", 8, "not an integer"),
        (GOOD + "-1\t0\t0\n", 8, "negative id"),
        (GOOD + "0\t0\t0\n", 8, "duplicate interaction"),
        (GOOD + "3\t0\t7\n", 8, "beyond"),
        (GOOD + "3\t0\n", 8, "missing value"),
    ],
)
def test_mmrec_bad_rows(tmp_path: Path, text: str, row: int, words: str) -> None:
    d = write_mmrec(tmp_path, text)
    with pytest.raises(DataError) as e:
        load_mmrec(d, "toy")
    assert "toy.inter" in str(e.value) and f"row {row}" in str(e.value) and words in str(e.value)


def test_mmrec_too_many_columns(tmp_path: Path) -> None:
    d = write_mmrec(tmp_path, GOOD + "1\t3\t0\t9\n")
    with pytest.raises(DataError, match=r"toy.inter.*wrong number of columns.*line 8"):
        load_mmrec(d, "toy")


def test_mmrec_missing_file(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no <name>.inter"):
        load_mmrec(tmp_path / "empty", "empty")


def test_data_error_crosses_a_process_boundary_intact() -> None:
    # a run in a worker process reports its data error to the driver pickled
    err = pickle.loads(pickle.dumps(DataError("u.data", "item id 1683 out of range", row=7)))
    assert isinstance(err, DataError)
    assert (str(err), err.path, err.row, err.problem) == (
        "u.data, row 7: item id 1683 out of range",
        "u.data",
        7,
        "item id 1683 out of range",
    )


def test_mmrec_empty_split(tmp_path: Path) -> None:
    d = write_mmrec(tmp_path, "userID\titemID\tx_label\n0\t0\t0\n1\t1\t0\n0\t1\t2\n")
    with pytest.raises(DataError, match="valid split has no users"):
        load_mmrec(d, "toy")


@pytest.mark.parametrize(
    "arr, words",
    [
        (np.ones((3, 2), np.float32), "3 rows but the data has 4 items"),  # fewer rows than ids: id beyond
        (np.full((4, 2), np.nan, np.float32), "NaN or infinite"),
        (np.array([[1, 2], [3, np.inf], [0, 0], [1, 1]], np.float64), "row 1"),
    ],
)
def test_mmrec_bad_features(tmp_path: Path, arr: np.ndarray, words: str) -> None:
    d = write_mmrec(tmp_path, GOOD, {"text_feat.npy": np.ones((4, 2), np.float32), "image_feat.npy": arr})
    with pytest.raises(DataError) as e:
        load_mmrec(d, "toy")
    assert "image_feat.npy" in str(e.value) and words in str(e.value)


def test_item_beyond_feature_rows(tmp_path: Path) -> None:
    d = write_mmrec(tmp_path, GOOD, {"image_feat.npy": np.ones((2, 2), np.float32)})
    with pytest.raises(DataError, match=r"toy.inter, row 4: column 'itemID': id 2 is beyond the 2 items"):
        load_mmrec(d, "toy")


def write_lattice(tmp: Path, train: object, val: object, test: object) -> Path:
    d = tmp / "lat"
    (d / "5-core").mkdir(parents=True, exist_ok=True)
    for name, obj in (("train", train), ("val", val), ("test", test)):
        (d / "5-core" / f"{name}.json").write_text(json.dumps(obj))
    return d


def test_lattice_good_and_bad(tmp_path: Path) -> None:
    d = write_lattice(tmp_path, {"0": [0, 1], "1": [2]}, {"0": [2]}, {"1": [0]})
    ds = load_lattice(d, "lat")
    assert (ds.n_users, ds.n_items, ds.train.nnz) == (2, 3, 3)
    d = write_lattice(tmp_path, {"0": [0, 1], "x": [2]}, {"0": [2]}, {"1": [0]})
    with pytest.raises(DataError, match=r"train.json, row 2: user id 'x' is not an integer"):
        load_lattice(d, "lat")
    d = write_lattice(tmp_path, {"0": [0, 1]}, {"0": [1]}, {"0": [2]})
    with pytest.raises(DataError, match=r"val.json, row 1: .*also in an earlier split"):
        load_lattice(d, "lat")
    d = write_lattice(tmp_path, {"0": [0, 1]}, {}, {"0": [2]})
    with pytest.raises(DataError, match=r"val.json: the split has no users"):
        load_lattice(d, "lat")
    d = write_lattice(tmp_path, {"0": [0, 1]}, {"0": [3]}, {"0": [2]})
    (d / "5-core" / "test.json").unlink()
    with pytest.raises(DataError, match=r"test.json: file not found"):
        load_lattice(d, "lat")


def test_movielens_split_and_errors(tmp_path: Path) -> None:
    d = tmp_path / "ml"
    d.mkdir()
    rows = [f"{u}\t{i}\t5\t{1000 + i}" for u in (1, 2) for i in range(1, 21)]
    (d / "u.data").write_text("\n".join(rows) + "\n")
    ds = load_movielens(d, "ml")
    assert (ds.n_users, ds.n_items) == (2, 20)
    assert ds.train.nnz == 32 and ds.valid.nnz == 4 and ds.test.nnz == 4
    # chronological: the test items are each user's latest two
    assert sorted(ds.test[0].indices) == [18, 19]
    (d / "u.data").write_text("\n".join(rows + ["0\t1\t5\t1"]) + "\n")
    with pytest.raises(DataError, match=r"u.data, row 41: column 'user': ids start at 1"):
        load_movielens(d, "ml")


def test_unknown_dataset_lists_known(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="synthetic-baby"):
        load_dataset("nope", tmp_path)


def test_synthetic_preset_is_seeded() -> None:
    a = load_dataset("synthetic-tiny")
    from benchmark.data import PRESETS, generate

    b = generate(PRESETS["synthetic-tiny"], "synthetic-tiny")
    assert a.checksum == b.checksum and a.synthetic
    assert set(a.features) == {"v", "t"}
    # every user has items in every split (LATTICE convention, >= 5 interactions each)
    for m in (a.train, a.valid, a.test):
        assert (np.diff(m.indptr) > 0).all()


def test_real_tiktok_loads() -> None:
    root = shared_data_or_skip("tiktok")
    ds = load_dataset("tiktok", root)
    assert (ds.n_users, ds.n_items) == (9308, 6710)
    assert set(ds.features) == {"v", "a"}


@pytest.mark.parametrize(
    "name, users, items, split, modalities, dims",
    [
        ("amazon-scientific", 8440, 4385, (42253, 8440, 8440), {"t"}, {"t": 384}),
        ("lastfm-2k", 1858, 1425, (44327, 4799, 7219), {"t", "a"}, {"t": 384, "a": 128}),
    ],
)
def test_real_multimodal_sets_load(name: str, users: int, items: int, split, modalities, dims) -> None:  # type: ignore[no-untyped-def]
    root = shared_data_or_skip(name)
    ds = load_dataset(name, root)
    assert (ds.n_users, ds.n_items) == (users, items)
    assert (ds.train.nnz, ds.valid.nnz, ds.test.nnz) == split
    assert set(ds.features) == modalities
    assert {m: f.shape for m, f in ds.features.items()} == {m: (items, d) for m, d in dims.items()}
    if name == "amazon-scientific":  # leave-one-out: one test item per user, so P@20 = R@20 / 20
        assert (np.diff(ds.test.indptr) == 1).all()


def test_real_amazon_counts_match_table1() -> None:
    root = shared_data_or_skip("amazon-baby")
    s = load_dataset("amazon-baby", root).summary()
    assert (s["users"], s["items"], s["interactions"]) == (19445, 7050, 139110)


# ----- bad feature .npy files: every reader names the file and the problem -------------------
def _npy_bytes(arr: np.ndarray, tmp: Path) -> bytes:
    np.save(tmp / "scratch.npy", arr, allow_pickle=True)
    return (tmp / "scratch.npy").read_bytes()


def _npz_bytes(tmp: Path) -> bytes:
    np.savez(tmp / "scratch.npz", x=np.ones((4, 2), np.float32))
    return (tmp / "scratch.npz").read_bytes()


BAD_NPY = {  # kind: (bytes of the file given tmp_path, words the error must hold)
    "text": (lambda t: b"0.1 0.2\n0.3 0.4\n", "not a NumPy .npy file"),
    "empty": (lambda t: b"", "is empty"),
    "npz": (_npz_bytes, "not a NumPy .npy file"),
    "pickled": (
        lambda t: _npy_bytes(np.array([[{"a": 1}, None]] * 4, dtype=object), t),
        "holds pickled Python objects, not numbers",
    ),
    "truncated-data": (lambda t: _npy_bytes(np.ones((4, 3), np.float32), t)[:-7], "is truncated"),
    "truncated-header": (lambda t: _npy_bytes(np.ones((4, 3), np.float32), t)[:20], "is truncated"),
    "damaged-header": (
        lambda t: _npy_bytes(np.ones((4, 3), np.float32), t).replace(b"'shape'", b"'shope'"),
        "damaged .npy header",
    ),
    "0-d": (lambda t: _npy_bytes(np.float32(1.0), t), "has 0 dimensions, expected (n_items, dim)"),
    "1-d": (lambda t: _npy_bytes(np.ones(4, np.float32), t), "has 1 dimension, expected (n_items, dim)"),
    "3-d": (lambda t: _npy_bytes(np.ones((4, 2, 2), np.float32), t), "has 3 dimensions, expected (n_items, dim)"),
    "strings": (lambda t: _npy_bytes(np.array([["0.5", "1.25"]] * 4), t), "dtype <U4 is not numeric"),
    "bytes": (lambda t: _npy_bytes(np.array([[b"ab", b"cd"]] * 4), t), "dtype |S2 is not numeric"),
    "bool": (lambda t: _npy_bytes(np.ones((4, 2), bool), t), "dtype |b1 is not numeric"),
    "complex": (lambda t: _npy_bytes(np.ones((4, 2), np.complex64), t), "is complex"),
}


def _read_with(reader: str, tmp: Path, data: bytes) -> None:
    if reader == "mmrec":
        d = write_mmrec(tmp, GOOD, {"text_feat.npy": np.ones((4, 2), np.float32)})
        (d / "image_feat.npy").write_bytes(data)
        load_mmrec(d, "toy")
    elif reader == "lattice":
        d = write_lattice(tmp, {"0": [0, 1], "1": [2]}, {"0": [2]}, {"1": [3]})
        (d / "image_feat.npy").write_bytes(data)
        load_lattice(d, "lat")
    else:  # the align-features command
        from benchmark.data.align import align_feature_file

        (tmp / "image_feat.npy").write_bytes(data)
        (tmp / "item_asin.tsv").write_text("itemID\tasin\n" + "".join(f"{i}\tB{i:09d}\n" for i in range(4)))
        align_feature_file(tmp / "image_feat.npy", tmp / "item_asin.tsv", tmp / "out.npy")


@pytest.mark.parametrize("reader", ["mmrec", "lattice", "align"])
@pytest.mark.parametrize("kind", sorted(BAD_NPY))
def test_bad_feature_npy_names_file(tmp_path: Path, kind: str, reader: str) -> None:
    make, words = BAD_NPY[kind]
    data = make(tmp_path)
    with pytest.raises(DataError) as e:
        _read_with(reader, tmp_path, data)
    msg = str(e.value)
    assert "image_feat.npy" in msg and e.value.path.endswith("image_feat.npy"), msg
    assert words in msg, msg
    assert not (tmp_path / "out.npy").exists()


def test_feature_npy_good_kinds(tmp_path: Path) -> None:
    """Any real dtype (ints, float16, Fortran order, version-2 header) and an empty matrix read back."""
    from benchmark.data.checks import read_feature_npy

    for i, arr in enumerate(
        [
            np.arange(8, dtype=np.int16).reshape(4, 2),
            np.ones((4, 3), np.float16),
            np.asfortranarray(np.arange(12, dtype=np.float64).reshape(4, 3)),
            np.zeros((0, 3), np.float32),
        ]
    ):
        np.save(tmp_path / f"f{i}.npy", arr)
        for mmap in (False, True):
            got = read_feature_npy(tmp_path / f"f{i}.npy", mmap=mmap)
            assert got.dtype == arr.dtype and np.array_equal(got, arr)
    with open(tmp_path / "v2.npy", "wb") as f:
        np.lib.format.write_array(f, np.ones((4, 2), np.float32), version=(2, 0))
    assert read_feature_npy(tmp_path / "v2.npy").shape == (4, 2)
    with pytest.raises(DataError, match=r"missing.npy: file not found"):
        read_feature_npy(tmp_path / "missing.npy")
