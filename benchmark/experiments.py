"""The paper's artefacts as lists of runs, and the records of those runs as tables.

Each artefact is a pair: a function returning the `RunSpec`s it needs, and a function turning
their records into a DataFrame. Adding a model to Table 2 is adding its name to `TABLE2_MODELS`.
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import pandas as pd

from . import paper
from .runs import RunSpec

TABLE2_MODELS: tuple[str, ...] = ("bpr", "vbpr", "lightgcn", "mmgcn", "grcn", "mmgcl", "huign",
                                  "slmrec", "lattice", "micro", "hcgcn", "mmil")
TABLE2_METRICS: tuple[str, ...] = ("recall@20", "precision@20", "ndcg@20")


def table2_specs(datasets: Iterable[str], models: Iterable[str], seeds: Iterable[int],
                 epochs: int | None = None, mask_valid_at_test: bool = False,
                 configs: dict[tuple[str, str], dict[str, Any]] | None = None) -> list[RunSpec]:
    """Every (dataset, model, seed) of Table 2; ``configs`` holds tuned overrides per (dataset, model)."""
    configs = configs or {}
    return [RunSpec(d, m, s, config=configs.get((d, m), {}), epochs=epochs,
                    mask_valid_at_test=mask_valid_at_test)
            for d in datasets for m in models for s in seeds]


ABLATION_METRICS: tuple[str, ...] = ("recall@20", "ndcg@20")


def ablation_specs(datasets: Iterable[str], variants: dict[str, dict[str, Any]], seeds: Iterable[int],
                   epochs: int | None = None, mask_valid_at_test: bool = False,
                   base: dict[str, dict[str, Any]] | None = None) -> list[RunSpec]:
    """Table 3: MMIL and each ablation variant (config overrides on top of ``base[dataset]``)."""
    base = base or {}
    return [RunSpec(d, "mmil", s, config={**base.get(d, {}), **over}, epochs=epochs,
                    mask_valid_at_test=mask_valid_at_test)
            for d in datasets for over in variants.values() for s in seeds]


def table3_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    df = aggregate(records, "variant", ABLATION_METRICS, row_of=lambda r: r["model"]["variant"])
    for m in ABLATION_METRICS:
        df[f"paper_{m}"] = [paper.paper_value(paper.TABLE3, d, v, m) for d, v in zip(df.dataset, df.variant)]
    return df


def aggregate(records: list[dict[str, Any]], row_key: str, metrics: Iterable[str],
              row_of: Any = None) -> pd.DataFrame:
    """One row per (dataset, row) with the mean over seeds of each metric, ``_std`` with >1 seed."""
    metrics = tuple(metrics)
    rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in records:
        key = (r["spec"]["dataset"], row_of(r) if row_of else r["spec"]["model"])
        rows.setdefault(key, []).append(r)
    out = []
    for (dataset, row), recs in rows.items():
        vals = {m: np.array([r["test"][m] for r in recs]) for m in metrics}
        entry: dict[str, Any] = {"dataset": dataset, row_key: row, "n_seeds": len(recs),
                                 "synthetic": bool(recs[0]["dataset"]["synthetic"]),
                                 "capped": any(r["epochs_capped"] for r in recs),
                                 "seconds_per_epoch": float(np.mean([r["seconds_per_epoch"] for r in recs]))}
        for m in metrics:
            entry[m] = float(vals[m].mean())
        if len(recs) > 1:
            for m in metrics:
                entry[f"{m}_std"] = float(vals[m].std(ddof=1))
        out.append(entry)
    return pd.DataFrame(out)


def table2_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    df = aggregate(records, "model", TABLE2_METRICS)
    for m in TABLE2_METRICS:
        df[f"paper_{m}"] = [paper.paper_value(paper.TABLE2, d, mo, m) for d, mo in zip(df.dataset, df.model)]
    return df
