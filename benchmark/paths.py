"""Where outputs go: resolved from the repository root (or $MMIL_BENCH_HOME), never the cwd."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def home() -> Path:
    return Path(os.environ.get("MMIL_BENCH_HOME", ROOT))


def results_dir() -> Path:
    return home() / "results"


def runs_dir() -> Path:
    return results_dir() / "runs"


def figures_dir() -> Path:
    return home() / "figures"


def cache_dir() -> Path:
    d = Path(os.environ.get("MMIL_BENCH_CACHE", home() / ".cache"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def tagged(stem: str, tag: str) -> str:
    """An artefact's file stem under ``run_all.py --tag``: ``table2`` -> ``table2-TAG``."""
    return f"{stem}-{tag}" if tag else stem


def default_data_root() -> Path:
    return ROOT / "data"
