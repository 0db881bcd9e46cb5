"""Dataclass configs that refuse unknown keys, and the training config every run shares."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """An unknown or ill-typed configuration key."""


def build_config(cls: type[T], overrides: Mapping[str, Any] | None = None, where: str = "") -> T:
    """Instantiate the dataclass ``cls`` from its defaults and ``overrides``; unknown keys fail."""
    overrides = dict(overrides or {})
    names = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise ConfigError(f"{where or cls.__name__}: unknown key(s) {unknown}; known: {sorted(names)}")
    for k, v in overrides.items():
        default = getattr(cls, k, None) if names[k].default is not dataclasses.MISSING else None
        if isinstance(default, bool) and not isinstance(v, bool):
            raise ConfigError(f"{where or cls.__name__}: {k} must be true or false, got {v!r}")
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ConfigError(f"{where or cls.__name__}: {k} must be a number, got {v!r}")
            if isinstance(default, float):
                overrides[k] = float(v)
        if isinstance(default, str) and not isinstance(v, str):
            raise ConfigError(f"{where or cls.__name__}: {k} must be a string, got {v!r}")
    return cls(**overrides)


def config_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


@dataclass(frozen=True)
class TrainConfig:
    """The shared training loop's settings; a model may change the defaults (``train_defaults``)."""

    lr: float = 1e-3  # Adam learning rate
    weight_decay: float = 0.0  # Adam weight decay (0 except SLMRec / MMGCL)
    batch_size: int = 2048  # training pairs per step
    n_negatives: int = 1  # uniform negatives per positive
    max_epochs: int = 300  # cap on training epochs
    min_epochs: int = 0  # no early stop before this many epochs
    eval_every: int = 1  # validate every this many epochs
    patience: int = 20  # validations without improvement before stopping
    metric: str = "recall@20"  # validation metric for early stopping
    lr_decay: float = 1.0  # lr multiplied by lr_decay ** (epoch / 50) (LATTICE/MICRO: 0.96)
    eval_batch_users: int = 1024  # users per full-ranking batch
