from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


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
