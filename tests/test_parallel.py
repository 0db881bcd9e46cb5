"""Parallel and distributed execution, and resuming after a killed driver."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from benchmark.runs import RunSpec, execute

ROOT = Path(__file__).resolve().parent.parent


def specs() -> list[RunSpec]:
    return [RunSpec("synthetic-tiny", "bpr", s, epochs=2) for s in (0, 1)]


def test_dask_backend_against_local_cluster(tmp_path: Path) -> None:
    distributed = pytest.importorskip("dask.distributed", reason="the `dask` extra is not installed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        recs = execute(specs(), None, "cpu", directory=tmp_path, verbose=False, backend="dask",
                       scheduler=cluster.scheduler_address)
    local = execute(specs(), None, "cpu", directory=tmp_path / "local", verbose=False)
    assert [r["key"] for r in recs] == [r["key"] for r in local]
    assert [r["test"]["recall@20"] for r in recs] == pytest.approx([r["test"]["recall@20"] for r in local], rel=1e-4)
    assert len(list(tmp_path.glob("*.json"))) == 2


def test_joblib_jobs_give_the_same_records(tmp_path: Path) -> None:
    par = execute(specs(), None, "cpu", jobs=2, directory=tmp_path / "par", verbose=False)
    seq = execute(specs(), None, "cpu", jobs=1, directory=tmp_path / "seq", verbose=False)
    assert [r["key"] for r in par] == [r["key"] for r in seq]
    for a, b in zip(par, seq):
        assert a["test"]["recall@20"] == pytest.approx(b["test"]["recall@20"], rel=1e-4)


def test_resume_after_killed_driver(tmp_path: Path) -> None:
    env = {**os.environ, "MMIL_BENCH_HOME": str(tmp_path)}
    args = [sys.executable, str(ROOT / "run_all.py"), "--table", "2", "--datasets", "synthetic-tiny",
            "--models", "bpr", "lightgcn", "vbpr", "--epochs", "3", "--quiet"]
    p = subprocess.Popen(args, stderr=subprocess.PIPE, text=True, env=env)
    assert p.stderr is not None
    deadline = time.time() + 300
    while time.time() < deadline:
        if "runs 1/3 done" in p.stderr.readline():
            break
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=60)
    runs = tmp_path / "results" / "runs"
    first = {f.name for f in runs.glob("*.json")}
    assert 1 <= len(first) < 3
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"{len(first)} of 3 runs already recorded" in done.stderr
    resumed = pd.read_csv(tmp_path / "results" / "table2.csv").drop(columns="seconds_per_epoch")
    assert {f.name for f in runs.glob("*.json")} >= first and len(list(runs.glob("*.json"))) == 3
    # a fresh, uninterrupted invocation produces the same table
    fresh = tmp_path / "fresh"
    subprocess.run(args, capture_output=True, text=True, env={**env, "MMIL_BENCH_HOME": str(fresh)}, timeout=600,
                   check=True)
    again = pd.read_csv(fresh / "results" / "table2.csv").drop(columns="seconds_per_epoch")
    pd.testing.assert_frame_equal(again, resumed, rtol=1e-4)
    assert all(json.loads(f.read_text())["test"] for f in runs.glob("*.json"))
