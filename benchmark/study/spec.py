"""What defines a run, and the key that names its record.

A run is a pure function of (dataset, model, config, seed, and the few protocol switches below).
Its key is a hash of the *resolved* spec (every default filled in) and of the dataset's content
checksum, so the same run asked for in two ways gets one record, and a changed dataset gets a
new one. The key holds no code version: after changing a model, rerun with ``--force``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from ..config import ConfigError, TrainConfig, build_config, config_dict
from ..registry import get_model

# part of every key; raising it would orphan every record on disk
RECORD_VERSION = 1


@dataclass(frozen=True, eq=False)
class RunSpec:
    """``config`` / ``train`` override the model's and the trainer's defaults; ``epochs`` is the
    one way to cap training (the record says it was capped). ``precision`` is ``fp32`` or
    ``bf16`` (autocast in the training steps; evaluation stays fp32). ``threads`` is the run's
    torch CPU thread count: a reduction's order, so a model's numbers, depend on it, so it is
    part of the spec (1 by default: the suite parallelises across runs, and one thread gives a
    run the same numbers on a laptop and on a 64-core node). ``search`` names the hyper-parameter
    search a run belongs to (`benchmark.study.search`): its pruner may stop the run, which never
    reads the test split, so its record is the search's and never a table's. ``device`` is the
    kind of device that trains it (``cpu`` or ``cuda``): kernels, their reduction order and a
    kNN's choice among tied neighbours differ between the two, so a GPU's record is never taken
    for a CPU's (measured: LATTICE's initial TikTok scores differ by 2.7 %, 34 of 6,710 item
    rows picking another tied neighbour; `benchmark.device_check`)."""

    dataset: str
    model: str
    seed: int = 0
    config: Mapping[str, Any] = field(default_factory=dict)
    train: Mapping[str, Any] = field(default_factory=dict)
    epochs: int | None = None
    mask_valid_at_test: bool = False
    precision: str = "fp32"
    threads: int = 1
    search: str = ""
    device: str = "cpu"

    def __post_init__(self) -> None:
        if "max_epochs" in self.train:
            raise ConfigError(
                f"{self.label()}: cap epochs with the spec's `epochs` (--epochs), not a train override of max_epochs"
            )
        if self.precision not in ("fp32", "bf16"):
            raise ConfigError(f"{self.label()}: precision must be fp32 or bf16, got {self.precision!r}")
        if not isinstance(self.threads, int) or self.threads < 1:
            raise ConfigError(f"{self.label()}: threads must be a positive integer, got {self.threads!r}")
        if self.device not in ("cpu", "cuda"):
            raise ConfigError(f"{self.label()}: device must be cpu or cuda (a kind, not cuda:1), got {self.device!r}")

    def resolved(self) -> tuple[Any, TrainConfig]:
        cls = get_model(self.model)
        try:
            mcfg = build_config(cls.Config, self.config, where=f"{self.model} config")
        except ConfigError as e:
            # a grid or tuned point mixes both kinds of key: name the trainer's too
            train_keys = sorted(f.name for f in fields(TrainConfig))
            raise ConfigError(f"{e}; or a training key: {train_keys}") from None
        tcfg = build_config(TrainConfig, {**cls.train_defaults, **self.train}, where=f"{self.model} train config")
        if self.epochs is not None:
            tcfg = build_config(TrainConfig, {**config_dict(tcfg), "max_epochs": min(self.epochs, tcfg.max_epochs)})
        return mcfg, tcfg

    def label(self) -> str:
        extra = ",".join(f"{k}={v}" for k, v in sorted({**self.config, **self.train}.items()))
        prec = "" if self.precision == "fp32" else f" {self.precision}"
        prec += "" if self.threads == 1 else f" {self.threads} threads"
        prec += f" search {self.search}" if self.search else ""
        prec += "" if self.device == "cpu" else f" {self.device}"
        return f"[{self.dataset}/{self.model}{'(' + extra + ')' if extra else ''} seed {self.seed}{prec}]"

    def identity(self) -> str:
        """The spec as given (before defaults), for de-duplicating a run list."""
        return json.dumps(self.to_json(), sort_keys=True, default=str)

    def key(self, checksum: str) -> str:
        """The record's name, given the dataset's checksum (`RunStore.key` looks it up once per
        dataset). fp32, one thread, no search and the CPU add nothing to the hash, so keys made before those fields
        existed hold."""
        mcfg, tcfg = self.resolved()
        ident = {
            "dataset": self.dataset,
            "checksum": checksum,
            "model": self.model,
            "seed": self.seed,
            "config": config_dict(mcfg),
            "train": config_dict(tcfg),
            "capped": self.epochs is not None,
            "mask_valid_at_test": self.mask_valid_at_test,
            "version": RECORD_VERSION,
        }
        if self.precision != "fp32":
            ident["precision"] = self.precision
        if self.threads != 1:
            ident["threads"] = self.threads
        if self.search:
            ident["search"] = self.search
        if self.device != "cpu":
            ident["device"] = self.device
        return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "model": self.model,
            "seed": self.seed,
            "config": dict(self.config),
            "train": dict(self.train),
            "epochs": self.epochs,
            "mask_valid_at_test": self.mask_valid_at_test,
            "precision": self.precision,
            "threads": self.threads,
            "search": self.search,
            "device": self.device,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> RunSpec:
        return cls(
            d["dataset"],
            d["model"],
            int(d["seed"]),
            dict(d.get("config", {})),
            dict(d.get("train", {})),
            d.get("epochs"),
            bool(d.get("mask_valid_at_test", False)),
            d.get("precision", "fp32"),
            int(d.get("threads", 1)),
            str(d.get("search", "")),
            str(d.get("device", "cpu")),
        )
