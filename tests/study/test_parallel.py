"""Parallel and distributed execution, and resuming after a killed driver."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from benchmark.config import ConfigError
from benchmark.study.artefacts import Options, protocol
from benchmark.study.execute import execute, run_one
from benchmark.study.spec import RunSpec
from benchmark.study.store import RunStore, read_record

from ..conftest import driver_argv, driver_env, kill_driver_when


def specs() -> list[RunSpec]:
    return [RunSpec("synthetic-tiny", "bpr", s, epochs=2) for s in (0, 1)]


def test_dask_backend_against_local_cluster(tmp_path: Path) -> None:
    distributed = pytest.importorskip("dask.distributed", reason="the `dask` extra is not installed")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        recs = execute(
            specs(), RunStore(tmp_path), "cpu", verbose=False, backend="dask", scheduler=cluster.scheduler_address
        )
    local = execute(specs(), RunStore(tmp_path / "local"), "cpu", verbose=False)
    assert [r.key for r in recs] == [r.key for r in local]
    assert [r.test["recall@20"] for r in recs] == pytest.approx([r.test["recall@20"] for r in local], rel=1e-4)
    assert len(list(tmp_path.glob("*.json.gz"))) == 2


def test_joblib_jobs_give_the_same_records(tmp_path: Path) -> None:
    # each run sets its spec's thread count, so the process layout cannot change a number
    par = execute(specs(), RunStore(tmp_path / "par"), "cpu", jobs=2, verbose=False)
    seq = execute(specs(), RunStore(tmp_path / "seq"), "cpu", jobs=1, verbose=False)
    assert [r.key for r in par] == [r.key for r in seq]
    for a, b in zip(par, seq):
        assert a.torch_threads == b.torch_threads == 1
        assert a.numbers() == b.numbers()


def test_threads_are_part_of_the_run(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    one, two = specs()[0], replace(specs()[0], threads=2)
    # one thread adds nothing to the hash: keys made before the field existed hold
    legacy = RunSpec.from_json({k: v for k, v in one.to_json().items() if k != "threads"})
    assert store.key(legacy) == store.key(one) != store.key(two)
    assert "2 threads" in two.label()
    (rec,) = execute([two], store, "cpu", verbose=False)
    assert rec.torch_threads == 2 and rec.spec.threads == 2
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        replace(one, threads=0)


def test_the_device_kind_is_part_of_the_run(tmp_path: Path) -> None:
    # a GPU's numbers differ from a CPU's (kernels, a kNN's pick among tied neighbours): a CUDA
    # record must never stand in for a CPU one, nor a CPU spec be trained on a GPU
    store = RunStore(tmp_path)
    cpu, gpu = specs()[0], replace(specs()[0], device="cuda")
    legacy = RunSpec.from_json({k: v for k, v in cpu.to_json().items() if k != "device"})
    assert store.key(legacy) == store.key(cpu) != store.key(gpu)
    assert gpu.label().endswith(" cuda]") and "cuda" not in cpu.label()
    with pytest.raises(ConfigError, match="specified on cuda, asked to train on cpu"):
        run_one(gpu, store, "cpu", log=None)
    with pytest.raises(ValueError, match="a kind, not cuda:1"):
        replace(cpu, device="cuda:1")
    assert {s.device for s in protocol(Options(device="cpu"), [gpu, cpu])} == {"cpu"}
    # naming the kind needs no GPU here: rendering a GPU's records must work on a CPU machine
    assert {s.device for s in protocol(Options(device="cuda:1"), [cpu])} == {"cuda"}


def test_resume_after_killed_driver(tmp_path: Path) -> None:
    env = driver_env(tmp_path)
    args = driver_argv("--table", "2", "--datasets", "synthetic-tiny", "--models", "bpr", "lightgcn", "vbpr")
    args += ["--epochs", "3", "--quiet"]
    kill_driver_when(args, env, "runs 1/3 done")
    runs = tmp_path / "results" / "runs"
    first = {f.name for f in runs.glob("*.json.gz")}
    assert 1 <= len(first) < 3
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"{len(first)} of 3 runs already recorded" in done.stderr
    resumed = pd.read_csv(tmp_path / "results" / "table2.csv").drop(columns="seconds_per_epoch")
    assert {f.name for f in runs.glob("*.json.gz")} >= first and len(list(runs.glob("*.json.gz"))) == 3
    # a fresh, uninterrupted invocation produces the same table
    fresh = tmp_path / "fresh"
    subprocess.run(
        args, capture_output=True, text=True, env={**env, "MMIL_BENCH_HOME": str(fresh)}, timeout=600, check=True
    )
    again = pd.read_csv(fresh / "results" / "table2.csv").drop(columns="seconds_per_epoch")
    pd.testing.assert_frame_equal(again, resumed, rtol=1e-4)
    assert all(read_record(f).test for f in runs.glob("*.json.gz"))


def _children(pid: int) -> list[int]:
    """Live processes whose parent is ``pid`` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc (Linux)")
def test_workers_exit_with_a_killed_driver(tmp_path: Path) -> None:
    """Two runs train in pool workers; the driver is SIGKILLed mid-run. Its workers must go too
    (they used to stay, blocked on the dead driver's pipe, holding their memory)."""
    env = driver_env(tmp_path)
    args = driver_argv("--table", "2", "--datasets", "synthetic-tiny")
    args += ["--models", "mmil", "--seeds", "0", "1", "--jobs", "2", "--epochs", "100000"]
    p = subprocess.Popen(args, stderr=subprocess.PIPE, text=True, env=env)
    workers: list[int] = []
    try:
        assert p.stderr is not None
        deadline = time.time() + 300
        while time.time() < deadline and "epoch" not in p.stderr.readline():
            pass
        # the pool's workers are the driver's children that run the training (loky also starts a
        # resource tracker, which exits by itself); at least the two of the two runs
        workers = _children(p.pid)
        assert len(workers) >= 2
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=60)
        deadline = time.time() + 60
        while time.time() < deadline and any(_alive(w) for w in workers):
            time.sleep(1)
        left = [w for w in workers if _alive(w)]
        trackers = [w for w in left if "resource_tracker" in Path(f"/proc/{w}/cmdline").read_text()]
        assert left == trackers, f"workers still alive after their driver was killed: {left}"
    finally:
        for w in workers:
            if _alive(w):
                os.kill(w, signal.SIGKILL)


def _record(
    dataset: str,
    model: str,
    seconds: float,
    config: dict | None = None,
    capped: bool = False,
    pruned: bool = False,
    epochs: int = 10,
) -> SimpleNamespace:
    """What the estimator reads of a record."""
    return SimpleNamespace(
        spec=RunSpec(dataset, model, 0, config=config or {}),
        epochs_capped=capped,
        pruned=pruned,
        total_seconds=seconds,
        epochs_run=epochs,
        code_version="test",
        finished="",
    )


def test_estimate_prefers_the_same_setting_and_orders_longest_first() -> None:
    from benchmark.study.estimate import History, longest_first

    history = History(
        [
            _record("synthetic-tiny", "mmil", 10.0),
            _record("synthetic-tiny", "mmil", 30.0),  # type: ignore[list-item]
            _record("synthetic-tiny", "mmil", 400.0, {"dim": 512}),
            _record("synthetic-tiny", "bpr", 2.0),
            _record("synthetic-tiny", "bpr", 99.0, capped=True),
            _record("synthetic-tiny", "bpr", 0.5, pruned=True),  # a search point stopped early
        ]
    )
    small = RunSpec("synthetic-tiny", "mmil", 1)
    big = RunSpec("synthetic-tiny", "mmil", 1, config={"dim": 512})
    bpr = RunSpec("synthetic-tiny", "bpr", 1)
    new = RunSpec("synthetic-tiny", "lightgcn", 1)
    e = history.estimate(small)
    # only the d=64 runs count for a d=64 run: 10 epochs at their median 2 s/epoch, and that rate
    # times its epoch cap
    assert e is not None and e.typical_seconds == pytest.approx(20.0)
    assert e.worst_seconds == pytest.approx(2.0 * small.resolved()[1].max_epochs)
    assert history.estimate(big).typical_seconds == pytest.approx(400.0)  # type: ignore[union-attr]
    # neither a capped run nor a pruned one is a typical run
    assert history.estimate(bpr).typical_seconds == pytest.approx(2.0)  # type: ignore[union-attr]
    assert history.estimate(new) is None
    # no run is expected to take longer than its epoch cap at the recorded rate
    # (a 3-epoch MMIL run matches no recorded setting: all three runs, at their median 3 s/epoch,
    # 30 s for their 10 epochs, 9 s for its 3)
    capped = history.estimate(replace(big, epochs=3))
    assert capped is not None and capped.typical_seconds == capped.worst_seconds == pytest.approx(9.0)
    assert history.estimate(replace(small, device="cuda")) is None  # a CPU's times say nothing of a GPU's
    assert longest_first([bpr, small, big, new], history) == [new, big, small, bpr]
    # with no records at all (a fresh clone): by the prior, a model it does not know first
    hcgcn, mine = RunSpec("synthetic-tiny", "hcgcn", 1), RunSpec("synthetic-tiny", "my-model", 1)
    assert longest_first([new, bpr, hcgcn, small, mine], History([])) == [mine, hcgcn, small, bpr, new]


def test_a_run_recorded_meanwhile_is_not_trained_again(tmp_path: Path) -> None:
    """Two drivers on the same results: the second takes the record the first wrote after it
    made its list, instead of training the run again."""
    from benchmark.study.execute import _worker, run_one

    spec, store = specs()[0], RunStore(tmp_path)
    rec = run_one(spec, store, "cpu", log=None)
    store.put(replace(rec, extra={"marker": "written by the other driver"}))
    again, ran = _worker(spec, store, "cpu", False)
    assert not ran and again.extra["marker"] == "written by the other driver"
    forced, ran = _worker(spec, store, "cpu", False, force=True)
    assert ran and "marker" not in forced.extra


def test_time_left_scales_by_the_estimates_when_all_are_known() -> None:
    from benchmark.study.estimate import time_left

    # 100 s ran a run estimated at 50 s; 10 s of estimates are left: 20 s, not 100 s per run
    assert time_left(100.0, [50.0], [5.0, 5.0]) == pytest.approx(20.0)
    # one run without an estimate: back to the mean per finished run
    assert time_left(100.0, [50.0], [5.0, None]) == pytest.approx(200.0)
    assert time_left(0.0, [], [1.0]) == 0.0


def test_finishing_time_of_a_greedy_schedule() -> None:
    from benchmark.study.schedule_replay import finishing_time

    # two workers: 1 -> w1, 1 -> w2, 4 -> w1 (free at 1): done at 5; longest first: 4 | 1+1: done at 4
    assert finishing_time([1.0, 1.0, 4.0], 2) == 5.0
    assert finishing_time([4.0, 1.0, 1.0], 2) == 4.0
    assert finishing_time([3.0, 2.0], 1) == 5.0
