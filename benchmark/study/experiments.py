"""The paper's artefacts as lists of runs, and the records of those runs as frames.

Each artefact is a pair: a function returning the `RunSpec`s it needs, and a function turning
their records into a DataFrame. What the study compares (models, variants, grids) is in
`benchmark.study.definition`; adding a model to Table 2 is adding its name there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd

from ..registry import get_model
from . import paper
from .definition import ABLATION_METRICS, FIGURE_METRICS, FIGURES, FOCUS, TABLE2_METRICS
from .record import Record
from .spec import RunSpec


def table2_specs(
    datasets: Iterable[str],
    models: Iterable[str],
    seeds: Iterable[int],
    epochs: int | None = None,
    mask_valid_at_test: bool = False,
    configs: dict[tuple[str, str], dict[str, Any]] | None = None,
) -> list[RunSpec]:
    """Every (dataset, model, seed) of Table 2; ``configs`` holds tuned overrides per (dataset, model)."""
    from .tuning import split_point

    configs = configs or {}
    specs = []
    for d in datasets:
        for m in models:
            config, train = split_point(configs.get((d, m), {}))
            specs += [
                RunSpec(
                    d,
                    m,
                    s,
                    config=config,
                    train=train,
                    epochs=epochs,
                    mask_valid_at_test=mask_valid_at_test,
                )
                for s in seeds
            ]
    return specs


def ablation_specs(
    datasets: Iterable[str],
    variants: dict[str, dict[str, Any]],
    seeds: Iterable[int],
    epochs: int | None = None,
    mask_valid_at_test: bool = False,
    base: dict[str, dict[str, Any]] | None = None,
) -> list[RunSpec]:
    """Table 3: MMIL and each ablation variant (config overrides on top of ``base[dataset]``,
    MMIL's tuned point on that dataset)."""
    from .tuning import split_point

    base = base or {}
    specs = []
    for d in datasets:
        config, train = split_point(base.get(d, {}))
        specs += [
            RunSpec(
                d,
                FOCUS,
                s,
                config={**config, **over},
                train=train,
                epochs=epochs,
                mask_valid_at_test=mask_valid_at_test,
            )
            for over in variants.values()
            for s in seeds
        ]
    return specs


def table3_frame(records: list[Record]) -> pd.DataFrame:
    df = aggregate(records, "variant", ABLATION_METRICS, row_of=lambda r: r.variant)
    for m in ABLATION_METRICS:
        df[f"paper_{m}"] = [paper.paper_value(paper.TABLE3, d, v, m) for d, v in zip(df.dataset, df.variant)]
        df[f"paper_{m}_flag"] = [paper.flagged(paper.TABLE3, d, v, m) for d, v in zip(df.dataset, df.variant)]
    return df


def aggregate(
    records: list[Record], row_key: str, metrics: Iterable[str], row_of: Callable[[Record], str] | None = None
) -> pd.DataFrame:
    """One row per (dataset, row) with the mean over seeds of each metric, ``_std`` with >1 seed."""
    metrics = tuple(metrics)
    rows: dict[tuple[str, str], list[Record]] = {}
    for r in records:
        key = (r.spec.dataset, row_of(r) if row_of else r.spec.model)
        rows.setdefault(key, []).append(r)
    out = []
    for (dataset, row), recs in rows.items():
        vals = {m: np.array([r.test[m] for r in recs]) for m in metrics}
        entry: dict[str, Any] = {
            "dataset": dataset,
            row_key: row,
            "n_seeds": len(recs),
            "synthetic": bool(recs[0].dataset.synthetic),
            "capped": any(r.epochs_capped for r in recs),
            "seconds_per_epoch": float(np.mean([r.seconds_per_epoch for r in recs])),
        }
        for m in metrics:
            entry[m] = float(vals[m].mean())
        if len(recs) > 1:
            for m in metrics:
                entry[f"{m}_std"] = float(vals[m].std(ddof=1))
        out.append(entry)
    return pd.DataFrame(out)


def table2_frame(records: list[Record]) -> pd.DataFrame:
    """Table 2's frame; ``tuned`` says whether a row ran at a configuration chosen on validation
    (any override of the model's defaults) or at the defaults."""
    df = aggregate(records, "model", TABLE2_METRICS)
    tuned = {(r.spec.dataset, r.spec.model) for r in records if r.spec.config or r.spec.train}
    df["tuned"] = [(d, m) in tuned for d, m in zip(df.dataset, df.model)]
    for m in TABLE2_METRICS:
        df[f"paper_{m}"] = [paper.paper_value(paper.TABLE2, d, mo, m) for d, mo in zip(df.dataset, df.model)]
        df[f"paper_{m}_flag"] = [paper.flagged(paper.TABLE2, d, mo, m) for d, mo in zip(df.dataset, df.model)]
    return df


def sensitivity_specs(
    figure: int,
    datasets: Iterable[str],
    seeds: Iterable[int],
    epochs: int | None = None,
    base: dict[str, dict[str, Any]] | None = None,
) -> list[RunSpec]:
    """One MMIL run per (dataset, parameter, value, seed), other parameters at ``base[dataset]``
    (MMIL's tuned point there) or their defaults."""
    from .tuning import split_point

    base = base or {}
    specs = []
    for d in datasets:
        config, train = split_point(base.get(d, {}))
        specs += [
            RunSpec(d, FOCUS, s, config={**config, param: value}, train=train, epochs=epochs)
            for param, grid in FIGURES[figure]
            for value in grid
            for s in seeds
        ]
    return specs


def sensitivity_frame(
    figure: int, records: list[Record], base: dict[str, dict[str, Any]] | None = None
) -> pd.DataFrame:
    """Rows (dataset, parameter, value) with mean and std over seeds of the figure's metrics.

    A record belongs to the panel of ``param = value`` when its resolved config is the default
    (plus ``base``) with only that parameter changed; the default run serves every panel whose
    grid holds the default value.
    """
    default = asdict(get_model(FOCUS).Config())
    base = base or {}
    rows = []
    for r in records:
        d = r.spec.dataset
        for param, grid in FIGURES[figure]:
            value = r.config[param]
            if value in grid and r.config == {**default, **base.get(d, {}), param: value}:
                rows.append(
                    {
                        "dataset": d,
                        "parameter": param,
                        "value": value,
                        "seed": r.spec.seed,
                        **{m: r.test[m] for m in FIGURE_METRICS},
                    }
                )
    df = pd.DataFrame(rows).drop_duplicates(["dataset", "parameter", "value", "seed"])
    agg = df.groupby(["dataset", "parameter", "value"], sort=False)[list(FIGURE_METRICS)].agg(["mean", "std", "count"])
    agg.columns = [f"{m}_{s}" if s != "mean" else m for m, s in agg.columns]
    return agg.reset_index().sort_values(["dataset", "parameter", "value"])


def pvalues_vs_best(
    records: list[Record],
    df: pd.DataFrame,
    row_key: str,
    focus: str,
    metrics: Iterable[str],
    row_of: Callable[[Record], str] | None = None,
) -> dict[str, dict[str, dict[str, float]]]:
    """Per dataset and metric, paired p-values of ``focus`` against the best other row."""
    from .significance import compare

    out: dict[str, dict[str, dict[str, float]]] = {}
    key = row_of or (lambda r: r.spec.model)
    for dataset, part in df.groupby("dataset", sort=False):
        if focus not in set(part[row_key]) or len(part) < 2:
            continue
        recs = [r for r in records if r.spec.dataset == dataset]
        for m in metrics:
            others = part[part[row_key] != focus]
            best = others.loc[others[m].idxmax(), row_key]
            out.setdefault(str(dataset), {})[m] = compare(
                [r for r in recs if key(r) == focus], [r for r in recs if key(r) == best], m
            )
    return out
