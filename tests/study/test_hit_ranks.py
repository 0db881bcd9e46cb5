"""The hit-rank diagnosis: its per-epoch probe reads the model without changing its training."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from benchmark.data import load_dataset
from benchmark.study import hit_ranks
from benchmark.study.spec import RunSpec


@pytest.mark.parametrize("model", ["lightgcn", "mmil"])
def test_probe_leaves_the_run_unchanged(model: str) -> None:
    data = load_dataset("synthetic-tiny")
    spec = RunSpec("synthetic-tiny", model, config={"dim": 8} if model == "mmil" else {})
    users = np.flatnonzero(np.diff(data.valid.indptr) > 0)
    runs = []
    for reads in (False, True):  # every epoch's losses and metrics, with and without reading the lists
        seen: list[dict[str, float]] = []

        def probe(m, history, reads=reads, seen=seen):  # type: ignore[no-untyped-def]
            if reads:
                hit_ranks.top_lists(m, data, users)
            seen[:] = [dict(h) for h in history]

        runs.append((hit_ranks.trained(spec, data, 3, probe=probe).state_dict(), seen))
    (plain, plain_history), (probed, probed_history) = runs
    assert len(plain_history) == 3 and plain_history == probed_history
    for k, v in plain.items():
        assert torch.equal(v, probed[k]), k


def test_trace_has_a_line_per_validation() -> None:
    data = load_dataset("synthetic-tiny")
    lines = hit_ranks.epoch_trace(RunSpec("synthetic-tiny", "lightgcn"), data, 4)
    assert lines[0].startswith("  MostPop")
    assert [int(line.split()[1]) for line in lines[1:]] == [1, 2, 3, 4]
    changed = [int(line.split("changed")[1].split()[0]) for line in lines[1:]]
    assert changed[0] == hit_ranks.K and all(0 <= c <= hit_ranks.K for c in changed[1:])


def test_most_popular_recall_by_hand() -> None:
    # 3 users, 25 items; item popularity in training: item 24 by users 0 and 1, items 0-19 by user 2
    train = sp.lil_matrix((3, 25))
    train[0, 24] = train[1, 24] = 1
    train[2, list(range(20))] = 1
    valid = sp.lil_matrix((3, 25))
    # users 0 and 1 have seen item 24, so their top 20 is items 0-19; user 2's holds item 24
    valid[0, 0] = valid[0, 21] = 1  # one of two in the top 20
    valid[1, 23] = 1  # popularity 0: a miss
    valid[2, 24] = 1  # a hit
    data = SimpleNamespace(train=train.tocsr(), valid=valid.tocsr())
    assert hit_ranks.most_popular_recall(data) == pytest.approx((0.5 + 0.0 + 1.0) / 3)


def test_trace_summary_by_hand() -> None:
    # epochs 1-2 skipped; recall peaks at epoch 4; hits move with recall (corr 1)
    rows = [(1, 0.0, 0.5, 20, 0), (2, 0.0, 0.5, 3, 0), (3, 0.1, 0.6, 2, 10), (4, 0.3, 0.8, 4, 30), (5, 0.2, 0.7, 0, 20)]
    line = hit_ranks.trace_summary(rows, skip=2)
    assert "epochs 3-5: overlap 70% (60%-80%)" in line
    assert "changed 2.0 per epoch" in line and "corr(recall, its valid hits) 1.00" in line
    assert "mean |change of recall| 0.1500" in line and "best epoch 4: 0.1000 / 0.2000" in line


def test_most_popular_counts_ties_ahead() -> None:
    # user 1 sees nothing; user 0 saw all 22 items, so each has popularity 1 and they all tie:
    # the evaluator's rule ranks user 1's valid item 21st, a miss whatever order a sort picks
    train = sp.lil_matrix((2, 22))
    train[0, :] = 1
    valid = sp.lil_matrix((2, 22))
    valid[1, 0] = 1
    data = SimpleNamespace(train=train.tocsr(), valid=valid.tocsr())
    assert hit_ranks.most_popular_recall(data) == 0.0


def test_tuned_reads_the_tuned_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    class EmptyStore:
        directory = tmp_path

        def __init__(self, **_: object) -> None:
            pass

        def get(self, spec: RunSpec) -> None:
            looked_up.append(spec)
            return None

    looked_up: list[RunSpec] = []
    monkeypatch.setattr(hit_ranks, "RunStore", EmptyStore)
    monkeypatch.setattr(
        hit_ranks, "load_choices", lambda: {("synthetic-tiny", "lightgcn"): {"lr": 0.01, "reg_weight": 0.1}}
    )
    argv = ["--data-root", str(tmp_path), "--dataset", "synthetic-tiny", "--tuned", "--models"]
    # the spec it looks up is the tuned one, trainer and model keys each in their place
    with pytest.raises(SystemExit, match=r"lightgcn\(lr=0.01,reg_weight=0.1\) seed 0\]"):
        hit_ranks.main([*argv, "lightgcn"])
    assert dict(looked_up[0].config) == {"reg_weight": 0.1} and dict(looked_up[0].train) == {"lr": 0.01}
    with pytest.raises(SystemExit, match="no tuned configuration of mmil on synthetic-tiny"):
        hit_ranks.main([*argv, "mmil"])


def test_describe_by_hand() -> None:
    # user 0: test items 3 and 30, item 3 at rank 2 (recall 1/2); user 1: test item 7, not listed
    n_items = 40
    test = sp.lil_matrix((2, n_items))
    test[0, 3] = test[0, 30] = test[1, 7] = 1
    data = SimpleNamespace(train=sp.csr_matrix((2, n_items)), test=test.tocsr(), n_items=n_items)
    top = np.array([[10, 3, *range(11, 29)], list(range(20, 40))])
    lines = hit_ranks.describe(top, np.zeros(n_items), data, np.array([0, 1]))
    assert lines[0].startswith("  recall@20 0.2500, hit rate 0.5000")
    assert "at rank 1 0.0%, at 1-5 100.0%, median rank 2" in lines[0]
