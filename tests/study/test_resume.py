"""A run killed at any epoch resumes from its checkpoint and ends with exactly the numbers of an
uninterrupted run: in-process for every model (an exception at a random epoch), and for the
driver killed with SIGKILL."""

from __future__ import annotations

import random
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import benchmark.trainer as trainer
from benchmark.registry import model_names
from benchmark.study import execute as execute_module
from benchmark.study.execute import execute, recorded_cpu_capability, run_one
from benchmark.study.spec import RunSpec
from benchmark.study.store import RunStore, read_record

from ..conftest import driver_argv, driver_env, kill_driver_when

EPOCHS = 5


class Killed(Exception):
    pass


def kill_at(epoch: int):  # type: ignore[no-untyped-def]
    """A log that stops the run when epoch ``epoch`` reports (before its checkpoint is saved)."""

    def log(msg: str) -> None:
        if f" epoch {epoch}/" in msg:
            raise Killed(msg)

    return log


@pytest.mark.parametrize("model", model_names())
def test_resumed_run_equals_an_uninterrupted_one(model: str, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    spec = RunSpec("synthetic-tiny", model, 0, epochs=EPOCHS)
    whole = run_one(spec, RunStore(tmp_path / "whole"), "cpu", log=None, checkpoint_seconds=0)
    store = RunStore(tmp_path / "killed")
    k = random.Random(model).randint(2, EPOCHS)
    with pytest.raises(Killed):
        run_one(spec, store, "cpu", log=kill_at(k), checkpoint_seconds=0)
    assert store.checkpoint_path(spec).is_file()
    resumed = run_one(spec, store, "cpu", log=None, checkpoint_seconds=0)
    assert resumed.resumed == 1
    assert resumed.numbers() == whole.numbers()


def test_a_run_resumed_on_another_kind_of_machine_names_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkpoint carried to a machine with other CPU kernels (a session on another machine)
    finishes there; its record names both machines, so `--verify` knows no machine reproduces it."""
    torch.set_num_threads(1)
    spec = RunSpec("synthetic-tiny", "lightgcn", 0, epochs=EPOCHS)
    store = RunStore(tmp_path)
    monkeypatch.setattr(execute_module, "hardware", lambda dev: "x86_64, 2 cpus, CPU kernels AVX512, torch 2")
    with pytest.raises(Killed):
        run_one(spec, store, "cpu", log=kill_at(3), checkpoint_seconds=0)
    monkeypatch.setattr(execute_module, "hardware", lambda dev: "x86_64, 2 cpus, CPU kernels AVX2, torch 2")
    rec = run_one(spec, store, "cpu", log=None, checkpoint_seconds=0)
    assert (
        rec.hardware
        == "x86_64, 2 cpus, CPU kernels AVX512, torch 2; resumed on x86_64, 2 cpus, CPU kernels AVX2, torch 2"
    )
    assert recorded_cpu_capability(rec.hardware) == "AVX512+AVX2"
    assert recorded_cpu_capability("x86_64, 2 cpus, torch 2.13.0+cpu") == "AVX2"  # before records named it
    again = run_one(spec, RunStore(tmp_path / "whole"), "cpu", log=None)
    assert again.hardware == "x86_64, 2 cpus, CPU kernels AVX2, torch 2"


@pytest.mark.parametrize("model", model_names())
def test_a_run_taking_over_a_finished_training_equals_a_whole_run(
    model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A search's finished point hands its final state to the same run outside the search: that
    run trains nothing, and its record equals one that trained from scratch."""
    torch.set_num_threads(1)
    spec = RunSpec("synthetic-tiny", model, 0, epochs=EPOCHS)
    whole = run_one(spec, RunStore(tmp_path / "whole"), "cpu", log=None)
    store = RunStore(tmp_path / "search")
    searched = replace(spec, search="grid")
    point = run_one(searched, store, "cpu", log=None)
    assert point.test == {} and store.checkpoint_path(searched).is_file()
    trainer.hand_over(store.checkpoint_path(searched), store.checkpoint_path(spec), point.key)
    assert not store.checkpoint_path(searched).exists()
    monkeypatch.setattr(trainer, "run_epoch", lambda *a, **k: pytest.fail("trained again"))
    took = run_one(spec, store, "cpu", log=None)
    assert took.continued_from == point.key and whole.continued_from == ""
    assert took.numbers() == whole.numbers()


def test_driver_killed_mid_run_resumes_to_the_same_record(tmp_path: Path) -> None:
    args = driver_argv("--table", "2", "--datasets", "synthetic-tiny", "--models", "mmil", "--epochs", "12")
    args += ["--checkpoint-minutes", "0"]
    env = driver_env(tmp_path / "killed", OMP_NUM_THREADS="1")
    kill_driver_when(args, env, "epoch 6/")
    runs = tmp_path / "killed" / "results" / "runs"
    assert not list(runs.glob("*.json.gz")) and list((runs / "checkpoints").glob("*.pt"))
    again = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "resumed from" in again.stderr
    assert not list((runs / "checkpoints").glob("*.pt"))  # removed once recorded
    fresh = tmp_path / "fresh"
    subprocess.run(
        args, capture_output=True, text=True, env={**env, "MMIL_BENCH_HOME": str(fresh)}, timeout=600, check=True
    )
    [a] = [read_record(p) for p in runs.glob("*.json.gz")]
    [b] = [read_record(p) for p in (fresh / "results" / "runs").glob("*.json.gz")]
    assert a.resumed == 1 and b.resumed == 0
    assert a.numbers() == b.numbers()


def test_execute_removes_the_checkpoint_of_a_recorded_run(tmp_path: Path) -> None:
    spec, store = RunSpec("synthetic-tiny", "bpr", 0, epochs=3), RunStore(tmp_path)
    [rec] = execute([spec], store, "cpu", verbose=False, checkpoint_seconds=0)
    assert rec.epochs_run == 3 and not store.checkpoint_path(spec).exists()
