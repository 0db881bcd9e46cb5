"""The pruned grid search: validation only, every point recorded, replayed exactly on a rerun."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

import benchmark.trainer as trainer
from benchmark.paths import ROOT
from benchmark.registry import get_model, model_names
from benchmark.study import execute, search, tuning
from benchmark.study.artefacts import Options
from benchmark.study.driver import search_of
from benchmark.study.search import Pruning, run_search
from benchmark.study.spec import RunSpec
from benchmark.study.store import RunStore

trainer_evaluate = trainer.evaluate
GRID = {"lr": [1e-2, 1e-6, 3e-3], "reg_weight": [1e-4]}
RULE = Pruning(min_epochs=2, reduction=2)


@pytest.fixture()
def no_test_split(monkeypatch: pytest.MonkeyPatch) -> None:
    real = trainer.evaluate

    def guarded(model, data, split, *args, **kwargs):  # type: ignore[no-untyped-def]
        if split == "test":
            raise AssertionError("the search read the test split")
        return real(model, data, split, *args, **kwargs)

    monkeypatch.setattr(trainer, "evaluate", guarded)


def _search(store: RunStore) -> search.SearchResult:
    specs, points = tuning.search_specs("bpr", "synthetic-tiny", GRID, RULE, epochs=8)
    return run_search(specs, points, store, RULE, "cpu")


def test_search_prunes_records_and_replays(tmp_path: Path, no_test_split: None, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    store = RunStore(tmp_path)
    first = _search(store)
    by_lr = {t.point["lr"]: t for t in first.trials}
    # lr 1e-6 barely moves: behind the first point at a rung (epoch 2 or 4), it stops there
    assert by_lr[1e-6].pruned and by_lr[1e-6].epochs == by_lr[1e-6].record.epochs_run in (2, 4)
    # the first point has no competitor: it runs to the cap
    assert not by_lr[1e-2].pruned and by_lr[1e-2].record.epochs_run == 8
    assert first.best.point["lr"] in (1e-2, 3e-3) and not first.best.pruned
    assert first.best.valid == max(t.valid for t in first.trials if not t.pruned)
    # every point is in the store, none with a test block
    assert len(list(tmp_path.glob("*.json.gz"))) == 3
    assert all(t.record.test == {} and t.record.test_per_user == {} for t in first.trials)
    assert all(t.record.spec.search == first.name for t in first.trials)

    # a rerun trains nothing and rebuilds the same decisions from the records
    monkeypatch.setattr(search, "run_one", lambda *a, **k: pytest.fail("a recorded point was trained again"))
    lines: list[str] = []
    specs, points = tuning.search_specs("bpr", "synthetic-tiny", GRID, RULE, epochs=8)
    again = run_search(specs, points, store, RULE, "cpu", progress=lines.append, expected_seconds=[4.0, 2.0, 3.0])
    assert again.summary() == first.summary()
    # each point's line says what the points after it are expected to take
    assert [line.split("elapsed")[1] for line in lines] == [", about 5s left)", ", about 3s left)", ", about 0s left)"]


def test_a_run_made_outside_the_search_is_not_trained_again(tmp_path: Path, no_test_split: None, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    alone = _search(RunStore(tmp_path / "alone"))
    store = RunStore(tmp_path / "shared")
    specs, _ = tuning.search_specs("bpr", "synthetic-tiny", GRID, RULE, epochs=8)
    # the same points run as plain runs first (they read the test split: the guard is lifted)
    monkeypatch.setattr(trainer, "evaluate", trainer_evaluate)
    for s in specs:
        store.put(execute.run_one(replace(s, search=""), store, "cpu", None))
    monkeypatch.setattr(search, "run_one", lambda *a, **k: pytest.fail("a point already run was trained again"))
    reused = _search(store)
    # cut where the pruner stops them, the plain runs give the search's every decision and value
    drop = [{k: v for k, v in t.items() if k != "key"} for t in alone.summary()["trials"]]
    assert [{k: v for k, v in t.items() if k != "key"} for t in reused.summary()["trials"]] == drop
    assert all(not t.record.spec.search for t in reused.trials)
    assert any(t.pruned and t.record.epochs_run > t.epochs for t in reused.trials)


def test_replay_refuses_records_of_another_rule(tmp_path: Path, no_test_split: None) -> None:
    store = RunStore(tmp_path)
    specs, points = tuning.search_specs("bpr", "synthetic-tiny", GRID, RULE, epochs=8)
    run_search(specs, points, store, RULE, "cpu")
    # the same records read under a rule that would have pruned the first finished point
    strict = Pruning(min_epochs=1, reduction=2)
    with pytest.raises(RuntimeError, match="another search order or rule"):
        run_search(specs[::-1], points[::-1], store, strict, "cpu")


def test_search_runs_are_not_table_runs(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    specs, _ = tuning.search_specs("bpr", "synthetic-tiny", GRID, RULE)
    plain = RunSpec("synthetic-tiny", "bpr", 0, train={"lr": 1e-2}, config={"reg_weight": 1e-4})
    assert store.key(specs[0]) != store.key(plain)


def test_choice_lands_in_tuned_json(tmp_path: Path, no_test_split: None, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MMIL_BENCH_HOME", str(tmp_path))
    (tmp_path / "results").mkdir()
    result = _search(RunStore(tmp_path / "runs"))
    tuning.save_choice("synthetic-tiny", "bpr", result)
    saved = json.loads(tuning.tuned_path().read_text())["synthetic-tiny"]["bpr"]
    assert saved["config"] == result.best.point and saved["grid_points"] == 3 and saved["pruned"] >= 1
    assert [t["key"] for t in saved["trials"]] == [t.record.key for t in result.trials]
    assert tuning.load_choices()[("synthetic-tiny", "bpr")] == result.best.point


@pytest.mark.parametrize("name", model_names())
def test_every_grid_fits_the_budget(name: str) -> None:
    grid = tuning.grid_of(name)
    assert len(search.grid_points(grid)) <= tuning.MAX_GRID_POINTS, grid
    assert "lr" in grid and len(grid) <= 3, grid
    cls = get_model(name)
    # every key is a model or trainer setting, so no point is silently ignored
    specs, _ = tuning.search_specs(name, "synthetic-tiny", grid, RULE)
    for s in specs:
        s.resolved()
    assert all(len(set(values)) == len(values) for values in cls.grid.values()), cls.grid


def test_run_one_reads_test_unless_searching(tmp_path: Path, no_test_split: None) -> None:
    spec = RunSpec("synthetic-tiny", "bpr", 0, epochs=1)
    with pytest.raises(AssertionError, match="read the test split"):
        execute.run_one(spec, RunStore(tmp_path), "cpu", None)


def test_table3_and_figures_start_from_mmils_tuned_point() -> None:
    from benchmark.study import experiments

    base = {"synthetic-tiny": {"lr": 5e-4, "reg": 1e-3}}
    for specs in (
        experiments.ablation_specs(["synthetic-tiny"], {"mmil": {}, "w/o IC": {"gamma": 0.0}}, [0], base=base),
        experiments.sensitivity_specs(2, ["synthetic-tiny"], [0], base=base),
    ):
        assert all(s.train == {"lr": 5e-4} and s.config["reg"] == 1e-3 for s in specs)
        for s in specs:
            s.resolved()  # every key lands where the model or the trainer reads it


def test_untuned_ignores_the_choices(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from benchmark.study.artefacts import Options, build

    monkeypatch.setenv("MMIL_BENCH_HOME", str(tmp_path))
    (tmp_path / "results").mkdir()
    tuning.tuned_path().write_text(json.dumps({"synthetic-tiny": {"bpr": {"config": {"lr": 5e-3}}}}))
    (tuned,) = build(Options(table=2), ["synthetic-tiny"], ["bpr"])
    (plain,) = build(Options(table=2, untuned=True, epochs=1), ["synthetic-tiny"], ["bpr"])
    assert tuned.specs[0].train == {"lr": 5e-3} and plain.specs[0].train == {}
    rec = execute.run_one(plain.specs[0], RunStore(tmp_path / "runs"), "cpu", None)
    assert "--untuned" in plain.command([rec], tmp_path, "", True)


def test_a_search_killed_mid_point_resumes_to_the_same_choice(tmp_path: Path, no_test_split: None) -> None:
    from .test_resume import Killed, kill_at

    whole = _search(RunStore(tmp_path / "whole"))
    store = RunStore(tmp_path / "killed")
    specs, points = tuning.search_specs("bpr", "synthetic-tiny", GRID, RULE, epochs=8)
    with pytest.raises(Killed):  # the first point dies at epoch 6, after its checkpoint of epoch 5
        run_search(specs, points, store, RULE, "cpu", log=kill_at(6), checkpoint_seconds=0)
    assert store.checkpoint_path(specs[0]).is_file()
    resumed = run_search(specs, points, store, RULE, "cpu", checkpoint_seconds=0)
    assert resumed.trials[0].record.resumed == 1
    assert resumed.summary() == whole.summary()
    assert [t.record.numbers() for t in resumed.trials] == [t.record.numbers() for t in whole.trials]


def test_the_choice_hands_its_training_to_seed_0_of_the_table(tmp_path: Path, no_test_split: None, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    store = RunStore(tmp_path / "search")
    result = _search(store)
    table = replace(result.best.record.spec, search="")
    # the choice's final state is now the table run's checkpoint; every other point's is gone
    assert store.checkpoint_path(table).is_file()
    assert [p.name for p in (tmp_path / "search" / "checkpoints").iterdir()] == [store.checkpoint_path(table).name]
    monkeypatch.setattr(trainer, "evaluate", trainer_evaluate)  # the table run reads the test split
    monkeypatch.setattr(trainer, "run_epoch", lambda *a, **k: pytest.fail("the choice was trained again"))
    [took] = execute.execute([table], store, "cpu", verbose=False)
    monkeypatch.undo()
    fresh = execute.run_one(table, RunStore(tmp_path / "fresh"), "cpu", None)
    assert took.continued_from == result.best.record.key and took.numbers() == fresh.numbers()
    assert not store.checkpoint_path(table).exists()


def test_the_first_rung_waits_for_the_models_own_min_epochs() -> None:
    """MMIL may not stop before epoch 30, so its search judges no point before then; a model
    without a minimum keeps the rule, so the name of every search it ran before holds."""
    opts = Options(tune=["mmil"])
    _, _, rule = search_of(opts, "mmil", "synthetic-tiny")
    assert rule.min_epochs == 30 == tuning.point_train_config("mmil", "synthetic-tiny", {}).min_epochs
    _, _, rule = search_of(opts, "lightgcn", "synthetic-tiny")
    assert rule == Pruning()
    # a point that sets the trainer's min_epochs moves the rung of the whole search
    _, _, rule = search_of(Options(tune=["bpr"], grid=["lr=1e-3,1e-2", "min_epochs=0,20"]), "bpr", "synthetic-tiny")
    assert rule.min_epochs == 20


def test_every_committed_search_keeps_its_name() -> None:
    """The committed choices name their search (grid and rule): recomputed by today's code, each
    name must come out the same, or its records would no longer replay."""
    committed = json.loads((ROOT / "results" / "tuned.json").read_text())
    entries = [(d, m, e) for d, models in committed.items() for m, e in models.items()]
    assert entries
    for d, m, entry in entries:
        specs, _, _ = search_of(Options(tune=[m]), m, d)
        assert specs[0].search == entry["search"], (d, m)
