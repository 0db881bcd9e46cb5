"""Hyper-parameter search that cannot see the test split.

A model declares its grid as the class attribute ``grid`` (name -> values, from its source's
published search). `tune_specs` lists one run per grid point; `select` picks the configuration
with the best *validation* metric of the restored best epoch (the record's ``valid`` block; the
``test`` block is never read); `save_choice` stores it in ``results/tuned.json``, where the
Table 2 runs pick it up.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from dataclasses import fields
from pathlib import Path
from typing import Any

from ..atomic import write_text_atomic
from ..config import TrainConfig
from ..paths import results_dir
from ..registry import get_model
from .record import Record
from .spec import RunSpec


def grid_of(model: str) -> dict[str, list[Any]]:
    grid = getattr(get_model(model), "grid", None)
    if not grid:
        raise ValueError(f"model {model!r} declares no hyper-parameter grid (class attribute `grid`)")
    return dict(grid)


def split_point(point: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A grid point's keys of the trainer (lr, ...) apart from the model's own."""
    train_keys = {f.name for f in fields(TrainConfig)}
    return (
        {k: v for k, v in point.items() if k not in train_keys},
        {k: v for k, v in point.items() if k in train_keys},
    )


def parse_grid(items: Iterable[str]) -> dict[str, list[Any]]:
    """``["lr=1e-3,5e-4", "loss=bce,bpr"]`` -> a grid (numbers parsed as numbers)."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not values:
            raise ValueError(f"--grid takes KEY=V1,V2,...; got {item!r}")
        grid[key] = [_value(v) for v in values.split(",")]
    return grid


def _value(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def tune_specs(
    model: str,
    datasets: Iterable[str],
    seeds: Iterable[int] = (0,),
    epochs: int | None = None,
    grid: dict[str, list[Any]] | None = None,
) -> list[RunSpec]:
    """One run per grid point (the model's own grid unless ``grid`` is given); a grid may hold
    trainer keys (``lr``) beside the model's."""
    grid = grid or grid_of(model)
    points = [split_point(dict(zip(grid, values))) for values in itertools.product(*grid.values())]
    return [RunSpec(d, model, s, config=c, train=t, epochs=epochs) for d in datasets for c, t in points for s in seeds]


def select(records: list[Record], metric: str = "recall@20") -> tuple[dict[str, Any], float]:
    """The grid point (model and trainer overrides together) with the best mean validation
    ``metric`` over its seeds."""
    by_point: dict[str, list[float]] = {}
    configs: dict[str, dict[str, Any]] = {}
    for r in records:
        point = {**r.spec.config, **r.spec.train}
        key = json.dumps(point, sort_keys=True)
        by_point.setdefault(key, []).append(r.valid[metric])
        configs[key] = point
    best = max(by_point, key=lambda k: sum(by_point[k]) / len(by_point[k]))
    return configs[best], sum(by_point[best]) / len(by_point[best])


def tuned_path() -> Path:
    return results_dir() / "tuned.json"


def load_choices() -> dict[tuple[str, str], dict[str, Any]]:
    """(dataset, model) -> the chosen grid point (model and trainer keys together)."""
    path = tuned_path()
    if not path.is_file():
        return {}
    raw = json.loads(path.read_text())
    return {(d, m): entry["config"] for d, models in raw.items() for m, entry in models.items()}


def save_choice(dataset: str, model: str, config: dict[str, Any], valid: float, n_points: int) -> None:
    path = tuned_path()
    raw = json.loads(path.read_text()) if path.is_file() else {}
    raw.setdefault(dataset, {})[model] = {"config": config, "valid_recall@20": valid, "grid_points": n_points}
    write_text_atomic(path, json.dumps(raw, indent=1, sort_keys=True) + "\n")
