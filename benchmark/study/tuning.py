"""Hyper-parameter search that cannot see the test split: grids, their runs, the stored choice.

A model declares its grid as the class attribute ``grid`` (name -> values, from its source's
published search; at most `MAX_GRID_POINTS` points: the learning rate, the model's main
regulariser and at most one knob of its own). `search_specs` lists one run per grid point;
`benchmark.study.search` runs them under a pruner and chooses on validation (its runs never read
the test split); `save_choice` stores the choice and every point tried in ``results/tuned.json``,
where the Table 2 runs pick it up.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterable
from dataclasses import fields
from pathlib import Path
from typing import Any

from ..atomic import write_text_atomic
from ..config import TrainConfig
from ..paths import results_dir
from ..registry import get_model
from .search import Pruning, SearchResult, grid_points, search_name
from .spec import RunSpec

MAX_GRID_POINTS = 12


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


def point_train_config(model: str, dataset: str, point: dict[str, Any]) -> TrainConfig:
    """The trainer's settings at a grid point (the model's defaults where the point says nothing)."""
    config, train = split_point(point)
    return RunSpec(dataset, model, 0, config=config, train=train).resolved()[1]


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


def search_specs(
    model: str,
    dataset: str,
    grid: dict[str, list[Any]],
    pruning: Pruning,
    seed: int = 0,
    epochs: int | None = None,
) -> tuple[list[RunSpec], list[dict[str, Any]]]:
    """One run per grid point, in the grid's order, all named by the search; a grid may hold
    trainer keys (``lr``) beside the model's."""
    name = search_name(grid, pruning)
    points = grid_points(grid)
    specs = []
    for point in points:
        config, train = split_point(point)
        specs.append(RunSpec(dataset, model, seed, config=config, train=train, epochs=epochs, search=name))
    return specs, points


def tuned_path() -> Path:
    return results_dir() / "tuned.json"


def load_tuned() -> dict[str, dict[str, Any]]:
    """results/tuned.json as stored: dataset -> model -> choice, summary and every point tried."""
    path = tuned_path()
    return json.loads(path.read_text()) if path.is_file() else {}


def load_choices() -> dict[tuple[str, str], dict[str, Any]]:
    """(dataset, model) -> the chosen grid point (model and trainer keys together)."""
    return {(d, m): entry["config"] for d, models in load_tuned().items() for m, entry in models.items()}


def save_choice(dataset: str, model: str, result: SearchResult) -> None:
    """The search's choice for (dataset, model), with every point it tried and where it stopped.
    Searches of other models may run in other processes: the read-modify-write holds a lock."""
    path = tuned_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(".tuned.json.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        raw = json.loads(path.read_text()) if path.is_file() else {}
        raw.setdefault(dataset, {})[model] = {
            "config": result.best.point,
            "valid_recall@20": result.best.valid,
            **result.summary(),
        }
        write_text_atomic(path, json.dumps(raw, indent=1, sort_keys=True) + "\n")
