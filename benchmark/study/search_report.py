"""The searches' audit (``results/searches.md``): per dataset and model, what its search tried,
where the pruner stopped each point, and what it chose.

A reviewer's question of a tuned table is whether every model had the same chance; the answer is
in ``results/tuned.json`` (every point tried, its key, where it stopped, its best validation
Recall@20) and in the records it names, and this page lays it out, rendered from those alone, so
``--report --check`` re-renders it and a search landed without its page fails the check. Two flags per search:

* ``at cap``: finished points that ran to their epoch cap (``max_epochs``) instead of stopping
  early; such a point may still have been rising.
* ``closest``: of the points the pruner stopped, the one nearest the best point at the epoch it
  was stopped, as its shortfall against that best (each point's running best validation
  Recall@20, read off the records). A small figure means a point was stopped on a difference
  that seed noise could make: "clearly behind" is what successive halving assumes, not what it
  checks.
* ``edge``: the chosen value of a key is the smallest or largest of the three or more values the
  grid tried, so a better value may lie outside the grid (a two-valued key is always on an edge,
  so it is not flagged).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

from ..paths import results_dir
from . import tables
from .definition import TABLE2_MODELS
from .search import Pruning, running_best
from .store import MissingRecords, RunStore
from .tuning import point_train_config

COLUMNS = [
    "dataset",
    "model",
    "first_rung",
    "points",
    "pruned",
    "pruned_at",
    "finished",
    "at_cap",
    "closest",
    "chosen",
    "valid",
    "epochs",
    "edge",
]


def _edges(point: dict[str, Any], tried: list[dict[str, Any]]) -> list[str]:
    out = []
    for key, value in point.items():
        values = sorted({p[key] for p in tried if key in p})
        if len(values) >= 3 and isinstance(value, (int, float)) and value in (values[0], values[-1]):
            out.append(f"{key}={value:g} ({'smallest' if value == values[0] else 'largest'})")
    return out


def closest_prune(trials: list[dict[str, Any]], store: RunStore) -> float | None:
    """Of the pruned ``trials``, the smallest relative shortfall against the best running best of
    the other trials at the epoch where it was stopped (in hindsight: points run after it count
    too, so it is negative where a stopped point led every other at that epoch); None where
    nothing was pruned."""
    curves = []
    for t in trials:
        record = store.by_key(t["key"])
        if record is None:
            raise MissingRecords(f"{store.directory}/{t['key']}.json.gz: a search point of tuned.json with no record")
        curves.append(dict(running_best(record.history, "recall@20")))
    gaps = []
    for i, t in enumerate(trials):
        others = [c[t["epochs"]] for j, c in enumerate(curves) if j != i and t["epochs"] in c]
        if t["pruned"] and others and (leader := max(others)) > 0:
            gaps.append((leader - t["valid"]) / leader)
    return min(gaps) if gaps else None


def search_rows(
    tuned: dict[str, dict[str, Any]], datasets: list[str], models: list[str], store: RunStore
) -> pd.DataFrame:
    """One row per (dataset, model) search in ``tuned`` (the parsed tuned.json), in the given
    orders; searches of other datasets or models are left out. ``store`` holds the points'
    records."""
    rows = []
    for d in datasets:
        for m in models:
            entry = tuned.get(d, {}).get(m)
            if entry is None:
                continue
            trials = entry["trials"]
            finished = [t for t in trials if not t["pruned"]]
            stops = sorted({t["epochs"] for t in trials if t["pruned"]})
            chosen = next(t for t in finished if t["point"] == entry["config"])
            rows.append(
                {
                    "dataset": d,
                    "model": m,
                    "first_rung": int(re.search(r"min=(\d+)", entry["search"]).group(1)),
                    "points": len(trials),
                    "pruned": sum(t["pruned"] for t in trials),
                    "pruned_at": ", ".join(
                        f"{e}: {sum(t['epochs'] == e for t in trials if t['pruned'])}" for e in stops
                    ),
                    "finished": len(finished),
                    "at_cap": sum(t["epochs"] >= point_train_config(m, d, t["point"]).max_epochs for t in finished),
                    "closest": closest_prune(trials, store),
                    "chosen": ", ".join(
                        f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in entry["config"].items()
                    ),
                    "valid": entry["valid_recall@20"],
                    "epochs": chosen["epochs"],
                    "edge": "; ".join(_edges(entry["config"], [t["point"] for t in trials])),
                }
            )
    return pd.DataFrame(rows, columns=COLUMNS)


def markdown(df: pd.DataFrame, command: str) -> str:
    rule = Pruning()
    out = [
        "# The grid searches",
        "",
        f"Rendered from `results/tuned.json` and its points' records (`{command}`). Each search ran its "
        "model's grid on the validation split only (the test split is never read), stopping points by "
        "successive halving on the running best validation Recall@20 (rungs at r, "
        f"{rule.reduction}r, {rule.reduction**2}r, ... epochs, keeping 1 in {rule.reduction}; the first rung r is "
        f"{rule.min_epochs}, or the model's own `min_epochs` where later: a point is not judged before its "
        "early stopping could judge it); the chosen point has the best validation Recall@20 of all points. `pruned at`: points "
        "stopped per epoch; `at cap`: finished points that ran to their epoch cap; `closest`: the pruned point "
        "nearest the best at its rung, as its shortfall (a small one: stopped on a difference seed noise could "
        "make); `edge`: a chosen value at the end of the three or more values tried.",
    ]
    for d, part in df.groupby("dataset", sort=False):
        out += [
            "",
            f"## {d}",
            "",
            "| model | first rung | points | pruned (at epoch: points) | closest | finished (at cap) | chosen | valid recall@20 | epochs run | edge |",
            "|---|---:|---:|---|---:|---|---|---:|---:|---|",
        ]
        out += [
            f"| {r.model} | {r.first_rung} | {r.points} | {r.pruned} ({r.pruned_at or '-'}) | "
            f"{'-' if pd.isna(r.closest) else f'{r.closest:.1%}'} | {r.finished} ({r.at_cap}) | "
            f"{r.chosen} | {r.valid:.4f} | {r.epochs} | {r.edge or '-'} |"
            for r in part.itertuples()
        ]
    if df.empty:
        out += ["", "No search of these datasets and models is in `results/tuned.json`."]
    return "\n".join(out) + "\n"


def render_searches(tuned: dict[str, dict[str, Any]], store: RunStore, tag: str) -> tuple[list[Path], list[str]]:
    """Write searches[-TAG].{md,csv} with every search in ``tuned`` (whatever a command line's
    --datasets or --tune named: the page is the whole file's audit, not one invocation's);
    returns the files and the keys of every point's record."""
    datasets = sorted(tuned)
    models = list(TABLE2_MODELS) + sorted({m for d in tuned.values() for m in d} - set(TABLE2_MODELS))
    df = search_rows(tuned, datasets, models, store)
    command = "python run_all.py --report --tune all" + (f" --tag {tag}" if tag else "")
    keys = [t["key"] for searches in tuned.values() for entry in searches.values() for t in entry["trials"]]
    stem = results_dir() / ("searches" + (f"-{tag}" if tag else ""))
    return tables.write_table(df, markdown(df, command), stem), keys
