from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_outputs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test writes results and caches under a temporary home, never into the repo."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("MMIL_BENCH_HOME", str(home))


def shared_data_or_skip(name: str) -> Path:
    folder = SHARED_DATA / name
    if not folder.is_dir():
        pytest.skip(f"real data {folder} is absent (only developers' machines have ../shared/data)")
    return SHARED_DATA


def driver_argv(*args: str) -> list[str]:
    """The command line that runs the suite's driver, ``run_all.py``, with ``args``."""
    return [sys.executable, str(REPO / "run_all.py"), *args]


def driver_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a driver whose results and caches live under ``home``."""
    return {**os.environ, "MMIL_BENCH_HOME": str(home), **extra}


def kill_driver_when(argv: list[str], env: dict[str, str], marker: str) -> None:
    """Start the driver, SIGKILL it once its progress log prints ``marker`` (or after 300 s), as a
    stop that gives no chance to clean up would."""
    p = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=env)
    assert p.stderr is not None
    deadline = time.time() + 300
    while time.time() < deadline and marker not in p.stderr.readline():
        pass
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=60)
