"""The run store: one gzip-compressed JSON record per run, named by the run's key.

``RunStore(directory, data_root)`` owns the path of a spec's record, reading it (``get``),
writing it atomically (``put``), what is missing of a run list, and the checkpoints of runs in
progress (``checkpoint_path``; never committed, removed when the run finishes). A spec's key
needs its dataset's checksum: the store loads each dataset once to read it.

Records are ``<key>.json.gz``, written with a zero gzip timestamp so the same record gives the
same bytes; a plain ``<key>.json`` of an earlier version of the suite is still read.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..data import load_dataset
from ..paths import runs_dir
from .record import Record
from .spec import RunSpec


class MissingRecords(ValueError):
    """--report (or --check) asked for an artefact whose runs are not all recorded."""


class RunStore:
    def __init__(self, directory: Path | None = None, data_root: Path | None = None) -> None:
        self.directory = directory or runs_dir()
        self.data_root = data_root
        self._checksums: dict[str, str] = {}
        self._keys: dict[str, str] = {}

    def checksum(self, dataset: str) -> str:
        if dataset not in self._checksums:
            self._checksums[dataset] = load_dataset(dataset, self.data_root).checksum
        return self._checksums[dataset]

    def key(self, spec: RunSpec) -> str:
        ident = spec.identity()
        if ident not in self._keys:
            self._keys[ident] = spec.key(self.checksum(spec.dataset))
        return self._keys[ident]

    def path(self, spec: RunSpec) -> Path:
        return self.directory / f"{self.key(spec)}.json.gz"

    def checkpoint_path(self, spec: RunSpec) -> Path:
        return self.directory / "checkpoints" / f"{self.key(spec)}.pt"

    def _existing_path(self, key: str) -> Path | None:
        for p in (self.directory / f"{key}.json.gz", self.directory / f"{key}.json"):
            if p.is_file():
                return p
        return None

    def has(self, spec: RunSpec) -> bool:
        return self._existing_path(self.key(spec)) is not None

    def get(self, spec: RunSpec) -> Record | None:
        path = self._existing_path(self.key(spec))
        return None if path is None else read_record(path)

    def by_key(self, key: str) -> Record | None:
        """The record named ``key`` (as tuned.json and the manifest name them), if stored."""
        path = self._existing_path(key)
        return None if path is None else read_record(path)

    def put(self, record: Record) -> Path:
        path = self.directory / f"{record.key}.json.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        data = json.dumps(record.to_json(), indent=None, sort_keys=True, separators=(",", ":")).encode()
        with open(tmp, "wb") as f:
            f.write(gzip.compress(data, compresslevel=9, mtime=0))
        os.replace(tmp, path)
        legacy = self.directory / f"{record.key}.json"
        legacy.unlink(missing_ok=True)
        return path

    def missing(self, specs: Iterable[RunSpec]) -> list[RunSpec]:
        return [s for s in specs if not self.has(s)]

    def records(self, specs: Iterable[RunSpec]) -> list[Record]:
        """The records of ``specs`` that exist, in order (missing ones left out)."""
        return [r for r in (self.get(s) for s in specs) if r is not None]

    def all(self) -> Iterator[Record]:
        """Every record in the store (for estimates), in file-name order."""
        paths = sorted(self.directory.glob("*.json.gz")) + sorted(self.directory.glob("*.json"))
        for p in paths:
            yield read_record(p)


def read_record(path: Path) -> Record:
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    try:
        return Record.from_json(json.loads(raw))
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: not a run record of this suite ({e})") from e
