"""A run's code version: '-dirty' follows edits to the code, not to rendered results."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from benchmark.study.execute import _git_describe

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def test_dirty_only_for_code_paths(tmp_path: Path) -> None:
    (tmp_path / "benchmark").mkdir()
    (tmp_path / "results").mkdir()
    (tmp_path / "benchmark" / "model.py").write_text("x = 1\n")
    (tmp_path / "results" / "table2.md").write_text("old\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "init")
    clean = _git_describe(tmp_path)
    assert clean and not clean.endswith("-dirty") and clean != "unknown"

    (tmp_path / "results" / "table2.md").write_text("re-rendered\n")
    (tmp_path / "results" / "figure2.csv").write_text("new output\n")
    assert _git_describe(tmp_path) == clean

    (tmp_path / "benchmark" / "model.py").write_text("x = 2\n")
    assert _git_describe(tmp_path) == f"{clean}-dirty"
    _git(tmp_path, "checkout", "--", "benchmark/model.py")
    (tmp_path / "benchmark" / "new_model.py").write_text("y = 1\n")
    assert _git_describe(tmp_path) == f"{clean}-dirty"


def test_not_a_checkout(tmp_path: Path) -> None:
    assert _git_describe(tmp_path) == "unknown"
