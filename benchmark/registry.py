"""Name -> model class. Models register themselves; nothing here knows one by name.

The packages whose import registers models are found through the ``mmil_bench.models`` entry
point group (this project's ``pyproject.toml`` declares ``baselines`` and ``mmil``); a package of
one's own joins by declaring its own entry point, or by calling `add_model_package`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TypeVar

from .model import Recommender

_MODELS: dict[str, type[Recommender]] = {}
ENTRY_POINT_GROUP = "mmil_bench.models"
BUILTIN_PACKAGES = ["baselines", "mmil"]
_EXTRA_PACKAGES: list[str] = []

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


def add_model_package(name: str) -> None:
    """Register the models of package ``name`` (imported on the next lookup)."""
    if name not in _EXTRA_PACKAGES:
        _EXTRA_PACKAGES.append(name)


def model_packages() -> list[str]:
    # the suite's own packages are named here too: a checkout run without `pip install` (a
    # cluster node, a copied tree) has no entry points and would otherwise find no model at all
    declared = [ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)]
    return list(dict.fromkeys(BUILTIN_PACKAGES + declared + _EXTRA_PACKAGES))


def _import_all() -> None:
    for pkg in model_packages():
        importlib.import_module(pkg)


def get_model(name: str) -> type[Recommender]:
    _import_all()
    if name not in _MODELS:
        raise UnknownModel(f"unknown model {name!r}; known: {sorted(_MODELS)}")
    return _MODELS[name]


def model_names() -> list[str]:
    _import_all()
    return sorted(_MODELS)
