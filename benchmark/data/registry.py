"""Dataset names resolve to loaders here, and only here.

A synthetic preset is named ``synthetic-*``; any other name is a folder under the data root,
whose layout picks the reader: ``5-core/`` (LATTICE), ``u.data`` (MovieLens-100K) or a
``*.inter`` file (MMRec).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from .dataset import Dataset
from .errors import DataError
from .lattice import load_lattice
from .mmrec import load_mmrec
from .movielens import load_movielens
from .synthetic import PRESETS, generate

Reader = Callable[[Path, str], Dataset]


def detect_reader(folder: Path) -> Reader | None:
    if (folder / "5-core").is_dir():
        return load_lattice
    if (folder / "u.data").is_file():
        return load_movielens
    if any(folder.glob("*.inter")):
        return load_mmrec
    return None


def available(data_root: Path | None) -> list[str]:
    """Every dataset name loadable now: the presets, then the loadable folders of the root."""
    names = list(PRESETS)
    if data_root is not None and Path(data_root).is_dir():
        names += sorted(p.name for p in Path(data_root).iterdir() if p.is_dir() and detect_reader(p))
    return names


def real_datasets(data_root: Path | None) -> list[str]:
    return [n for n in available(data_root) if n not in PRESETS]


@lru_cache(maxsize=8)
def _load(name: str, root: str | None) -> Dataset:
    if name in PRESETS:
        return generate(PRESETS[name], name)
    if root is None:
        raise DataError(name, f"unknown dataset; known: {available(None)}")
    folder = Path(root) / name
    if not folder.is_dir():
        raise DataError(folder, f"no such dataset folder; known datasets: {available(Path(root))}")
    reader = detect_reader(folder)
    if reader is None:
        raise DataError(folder, "no known layout here (5-core/*.json, u.data or <name>.inter)")
    return reader(folder, name)


def load_dataset(name: str, data_root: Path | str | None = None) -> Dataset:
    """Load a dataset by name (cached per process; a `Dataset` is immutable)."""
    root = None if data_root is None else str(Path(data_root).resolve())
    return _load(name, root)
