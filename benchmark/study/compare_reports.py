"""Two committed reports compared cell by cell: did a change of protocol (precision, threads,
machine) move the numbers beyond seed noise?

    python -m benchmark.study.compare_reports tiktok-fp32-micro tiktok-bf16-micro

For every (dataset, model) that both reports hold, the runs are paired by seed. Per metric: each
side's per-seed values and mean ± sd, and the two-sided paired t-tests over test users (the
per-user metric averaged over seeds) and over seeds (`significance.compare`); then the best epochs.
The rule is the verdict sentence's (`verdict.direction`): the two differ when p over users is below
it and every seed moves the same way; otherwise they are within seed noise (or identical, when
no seed moves). It reads only the
committed records that the manifest (`results/artefacts.json`) lists for each report's page
(`results/REPORT-<tag>.md`), so it trains nothing and needs no dataset.
"""

from __future__ import annotations

import argparse

import numpy as np

from .driver import load_manifest
from .record import Record
from .store import RunStore
from .verdict import direction, format_p

METRICS = ("recall@20", "ndcg@20")


def report_records(tag: str, store: RunStore | None = None) -> list[Record]:
    """The records a committed report (``results/REPORT-<tag>.md``) was rendered from."""
    page = f"results/REPORT-{tag}.md"
    entry = load_manifest().get(page)
    if entry is None:
        raise SystemExit(f"{page}: no such report in results/artefacts.json (render it with --report --tag {tag})")
    store = store or RunStore()
    out = []
    for key in entry["records"]:
        rec = store.by_key(key)
        if rec is None:
            raise SystemExit(f"{page}: its record {key} is not in {store.directory}")
        out.append(rec)
    return out


def _cell(values: list[float]) -> str:
    per_seed = " / ".join(f"{v:.4f}" for v in values)
    spread = f" ± {np.std(values, ddof=1):.4f}" if len(values) > 1 else ""
    return f"{np.mean(values):.4f}{spread} ({per_seed})"


def compare_runs(a: list[Record], b: list[Record], metrics: tuple[str, ...] = METRICS) -> list[str]:
    """Markdown rows, one per (dataset, model, metric) present on both sides, paired by seed."""
    rows = [
        "| dataset | model | metric | A | B | p users | p seeds | seeds | A vs B |",
        "|---|---|---|---|---|---|---|---:|---|",
    ]
    cells = dict.fromkeys((r.spec.dataset, r.spec.model) for r in a)
    for dataset, model in cells:
        side_a = [r for r in a if (r.spec.dataset, r.spec.model) == (dataset, model)]
        side_b = [r for r in b if (r.spec.dataset, r.spec.model) == (dataset, model)]
        seeds = sorted({r.spec.seed for r in side_a} & {r.spec.seed for r in side_b})
        if not seeds:
            continue
        pick_a = [next(r for r in side_a if r.spec.seed == s) for s in seeds]
        pick_b = [next(r for r in side_b if r.spec.seed == s) for s in seeds]
        for metric in (*metrics, "best epoch"):
            if metric == "best epoch":
                va, vb = [r.best_epoch for r in pick_a], [r.best_epoch for r in pick_b]
                rows.append(
                    f"| {dataset} | {model} | best epoch | {' / '.join(map(str, va))} | "
                    f"{' / '.join(map(str, vb))} | | | {len(seeds)} | |"
                )
                continue
            va, vb = [r.test[metric] for r in pick_a], [r.test[metric] for r in pick_b]
            sign, p = direction(pick_a, pick_b, metric)
            word = {1: "A higher", -1: "B higher", 0: "within seed noise"}[sign]
            if va == vb:
                word = "identical"
            rows.append(
                f"| {dataset} | {model} | {metric} | {_cell(va)} | {_cell(vb)} | {format_p(p['p_users'])} "
                f"| {format_p(p['p_seeds'])} | {len(seeds)} | {word} |"
            )
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("tag_a", help="tag of the first committed report (A)")
    ap.add_argument("tag_b", help="tag of the second committed report (B)")
    args = ap.parse_args(argv)
    print(f"A = {args.tag_a}, B = {args.tag_b}")
    print("\n".join(compare_runs(report_records(args.tag_a), report_records(args.tag_b))))


if __name__ == "__main__":
    main()
