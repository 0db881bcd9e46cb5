"""Name -> model class. Models register themselves; nothing here knows one by name."""
from __future__ import annotations

import importlib
from typing import Callable, TypeVar

from .model import Recommender

_MODELS: dict[str, type[Recommender]] = {}
# packages whose import registers their models
MODEL_PACKAGES = ("baselines", "mmil")

M = TypeVar("M", bound=type[Recommender])


class UnknownModel(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def register(name: str) -> Callable[[M], M]:
    def deco(cls: M) -> M:
        if name in _MODELS and _MODELS[name] is not cls:
            raise ValueError(f"model name {name!r} registered twice")
        cls.name = name
        _MODELS[name] = cls
        return cls
    return deco


def _import_all() -> None:
    for pkg in MODEL_PACKAGES:
        try:
            importlib.import_module(pkg)
        except ModuleNotFoundError as e:
            if e.name != pkg:
                raise


def get_model(name: str) -> type[Recommender]:
    _import_all()
    if name not in _MODELS:
        raise UnknownModel(f"unknown model {name!r}; known: {sorted(_MODELS)}")
    return _MODELS[name]


def model_names() -> list[str]:
    _import_all()
    return sorted(_MODELS)
