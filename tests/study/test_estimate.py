"""The expected length of a search under successive halving (`benchmark.study.estimate`)."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

from benchmark.study.estimate import History, expected_search_seconds, expected_sha_epochs, sha_epochs
from benchmark.study.spec import RunSpec


def test_sha_epochs_by_hand() -> None:
    # rungs 5, 15, 45 (135 is past the 100 epochs a point runs when nothing stops it)
    # 1: alone at every rung, goes on; 3: best of 2; 2: 3 reached rung 5, the best 1 goes on, it is
    # not it; 5: best of 4, then of 3 at 15 and 45; 4: 5 at rung 5, one goes on (5); 0: 6 at rung
    # 5, two go on (5 and 4)
    assert sha_epochs([1, 3, 2, 5, 4, 0], 5, 3, 100) == [100, 100, 5, 100, 5, 5]
    assert sha_epochs(list(range(12)), 5, 3, 100) == [100] * 12  # each point better than all before
    assert sha_epochs(list(range(12))[::-1], 5, 3, 100) == [100] + [5] * 11
    assert sha_epochs([2, 1], 5, 3, 4) == [4, 4]  # a point ending before the first rung is never judged


def test_sha_epochs_is_the_rule_optuna_applies() -> None:
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rng = random.Random(3)
    for _ in range(20):
        merits, finish = [rng.random() for _ in range(12)], rng.choice([30, 50, 140])
        study = optuna.create_study(
            direction="maximize", pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=5, reduction_factor=3)
        )
        epochs = []
        for m in merits:
            trial = study.ask()
            for epoch in range(1, finish + 1):
                trial.report(m, epoch)
                if trial.should_prune():
                    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                    epochs.append(epoch)
                    break
            else:
                study.tell(trial, m)
                epochs.append(finish)
        assert sha_epochs(merits, 5, 3, finish) == epochs


def test_expected_sha_epochs() -> None:
    assert expected_sha_epochs(1, 5, 3, 80) == [80.0]
    e = expected_sha_epochs(12, 5, 3, 100)
    assert e == expected_sha_epochs(12, 5, 3, 100)  # seeded: a plan prints the same figure twice
    assert e[0] == 100.0  # the first point is alone at every rung
    assert all(5.0 <= x < 100.0 for x in e[1:])
    assert e[1] > e[-1]  # a late point meets more competitors at each rung


def _rec(
    model: str, epochs: int, seconds: float, pruned: bool = False, code: str = "new", finished: str = "2026-12-02"
) -> SimpleNamespace:
    return SimpleNamespace(
        spec=RunSpec("synthetic-tiny", model, 0),
        epochs_capped=False,
        pruned=pruned,
        total_seconds=seconds,
        epochs_run=epochs,
        code_version=code,
        finished=finished,
    )


def test_expected_search_seconds() -> None:
    history = History([_rec("bpr", 40, 80.0), _rec("bpr", 60, 120.0), _rec("bpr", 5, 10.0, pruned=True)])
    specs = [RunSpec("synthetic-tiny", "bpr", 0, config={"reg_weight": r}) for r in (0.1, 0.01, 0.001)]
    # finish: the unpruned runs' 50 epochs; 2 s an epoch (the point's own setting has no record)
    seconds = expected_search_seconds(specs, [False, True, True], 5, 3, history)
    assert seconds is not None
    assert seconds == pytest.approx([0.0] + [2.0 * e for e in expected_sha_epochs(3, 5, 3, 50.0)[1:]])
    # only pruned runs: how long a point runs when not stopped is unknown
    assert expected_search_seconds(specs, [True] * 3, 5, 3, History([_rec("bpr", 5, 10.0, pruned=True)])) is None


def test_rate_comes_from_the_newest_code_and_resists_one_slow_run() -> None:
    old = _rec("bpr", 100, 10_000.0, code="old", finished="2026-11-30")  # 100 s an epoch, before a speed-up
    new = [_rec("bpr", 50, 100.0), _rec("bpr", 50, 150.0), _rec("bpr", 50, 5_000.0)]  # 2, 3 and 100 s an epoch
    estimate = History([old, *new]).estimate(RunSpec("synthetic-tiny", "bpr", 1))
    assert estimate is not None
    # median rate of the newest code: 3 s an epoch; epochs: the mean of all four unpruned runs (62.5)
    assert estimate.typical_seconds == pytest.approx(3.0 * 62.5)
    assert estimate.worst_seconds == pytest.approx(3.0 * RunSpec("synthetic-tiny", "bpr", 1).resolved()[1].max_epochs)
    # the newest code is that of the last record finished, whatever order the store lists them in
    finished_last = _rec("bpr", 10, 10.0, code="newer", finished="2026-12-03")
    assert History([finished_last, old, *new]).finish_and_rate(RunSpec("synthetic-tiny", "bpr", 1)) == pytest.approx(
        (52.0, 1.0)
    )
