"""The typed run record: what one finished run leaves behind.

One record per run, stored by `benchmark.study.store.RunStore`. It names everything its numbers
depend on (spec, resolved configs, dataset checksum, code version, device, torch threads) and
keeps the per-user test values that the significance tests need.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .spec import RunSpec


@dataclass(frozen=True)
class DatasetInfo:
    """The dataset's Table 1 row, its checksum and where it came from."""

    dataset: str
    users: int
    items: int
    train: int
    valid: int
    test: int
    interactions: int
    density: float
    modalities: str
    synthetic: bool
    checksum: str
    source: str = ""


@dataclass(frozen=True)
class Record:
    spec: RunSpec
    key: str
    config: dict[str, Any]  # the model's resolved config
    train_config: dict[str, Any]  # the trainer's resolved config
    dataset: DatasetInfo
    model: dict[str, Any]  # name, n_parameters and the model's `describe()`
    epochs_capped: bool
    code_version: str
    device: str
    hardware: str
    torch_threads: int
    history: list[dict[str, float]]
    epochs_run: int
    stopped_early: bool
    best_epoch: int
    valid: dict[str, float]  # validation metrics of the restored best epoch
    test: dict[str, float]  # empty for a search's run: it never reads the test split
    mask_valid_at_test: bool
    test_per_user: dict[str, list[float]]
    test_users: int
    seconds_per_epoch: float
    eval_seconds: float
    total_seconds: float
    peak_memory_mb: float
    finished: str
    resumed: int = 0  # times the run resumed from a checkpoint
    pruned: bool = False  # a search's pruner stopped it (`benchmark.study.search`)
    # the key of the search run whose finished training this run took over: it trained nothing
    # and read the test split once with that run's best state (`benchmark.study.search`)
    continued_from: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # keys of a newer writer, kept as they are

    @property
    def variant(self) -> str:
        """The row name of an ablation table (MMIL's ``describe()`` names its variant)."""
        return str(self.model.get("variant", self.spec.model))

    def numbers(self) -> dict[str, Any]:
        """What must reproduce exactly: everything but timings, memory, dates and code version."""
        return {
            "key": self.key,
            "history": self.history,
            "epochs_run": self.epochs_run,
            "best_epoch": self.best_epoch,
            "valid": self.valid,
            "test": self.test,
            "test_per_user": self.test_per_user,
        }

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("spec", "dataset", "extra")}
        return {"spec": self.spec.to_json(), "dataset": asdict(self.dataset), **out, **self.extra}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Record:
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names and k not in ("spec", "dataset", "extra")}
        extra = {k: v for k, v in d.items() if k not in names}
        ds = dict(d["dataset"])
        ds_names = {f.name for f in fields(DatasetInfo)}
        return cls(
            spec=RunSpec.from_json(d["spec"]),
            dataset=DatasetInfo(**{k: v for k, v in ds.items() if k in ds_names}),
            extra=extra,
            **kw,
        )
