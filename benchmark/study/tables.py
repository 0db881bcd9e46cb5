"""Render artefacts from run records only: tables as Markdown, CSV and LaTeX.

A table frame (see `benchmark.study.experiments`) has one row per (dataset, row) with the mean of each
metric over seeds, ``<metric>_std`` with more than one seed, ``paper_<metric>`` where the
paper's value is known and ``paper_<metric>_flag`` where that value is a misprint kept as printed
(`benchmark.study.paper.flagged`). Cells read "mean ± std"; the paper's value stands beside ours
with our relative difference, marked ⚠ (LaTeX: a dagger) when flagged; the best of each column is
bold; an "Improvement" row gives the focus row (MMIL) over the best other row, with paired
p-values when several seeds ran.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from ..atomic import write_text_atomic


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _p(p: float) -> str:
    return "n/a" if _missing(p) else f"{p:.3g}"


def cell(mean: float, std: float | None) -> str:
    return f"{mean:.4f}" if _missing(std) else f"{mean:.4f} ± {std:.4f}"


FLAG = "⚠"  # a paper value kept as printed although it is a misprint (`paper.flagged`)
FLAG_NOTE = f"{FLAG} misprinted in the source, kept as printed (see `benchmark/study/paper.py`)."


def _flag(r: Any, metric: str) -> str | None:
    """The flag note of a frame row's paper value (column ``paper_<metric>_flag``), if any."""
    f = r.get(f"paper_{metric}_flag")
    return None if _missing(f) or not f else str(f)


def paper_cell(ours: float, theirs: float | None, flag: str | None = None) -> str:
    """The paper's value and ours relative to it; ``flag`` (a misprint's note) adds a ⚠ mark."""
    if _missing(theirs):
        return "n/a"
    mark = f" {FLAG}" if flag else ""
    return f"{theirs:.4f}{mark} ({(ours - theirs) / theirs:+.1%})"


def improvement(part: pd.DataFrame, row_key: str, focus: str, metric: str) -> tuple[str, float] | None:
    """(best other row, relative gain of ``focus`` over it) on ``metric``; None without both."""
    mine = part[part[row_key] == focus]
    others = part[part[row_key] != focus]
    if mine.empty or others.empty:
        return None
    best = others.loc[others[metric].idxmax()]
    return str(best[row_key]), (float(mine[metric].iloc[0]) - best[metric]) / best[metric]


def _rows(
    part: pd.DataFrame,
    row_key: str,
    metrics: tuple[str, ...],
    focus: str | None,
    pvalues: dict[str, dict[str, float]] | None,
    bold: tuple[str, str],
) -> tuple[list[str], list[list[str]]]:
    """Header and body cells of one dataset's table (shared by Markdown and LaTeX)."""
    b0, b1 = bold
    head = [row_key, "seeds"] + list(metrics) + [f"paper {m} (ours vs paper)" for m in metrics] + ["s/epoch"]
    best = {m: part[m].max() for m in metrics}
    body = []
    for _, r in part.iterrows():
        cells = [str(r[row_key]) + (" (capped)" if r.get("capped") else ""), str(int(r["n_seeds"]))]
        for m in metrics:
            c = cell(r[m], r.get(f"{m}_std"))
            cells.append(f"{b0}{c}{b1}" if r[m] == best[m] else c)
        cells += [paper_cell(r[m], r.get(f"paper_{m}"), _flag(r, m)) for m in metrics]
        cells.append(f"{r['seconds_per_epoch']:.2f}")
        body.append(cells)
    if focus is not None:
        gains = [improvement(part, row_key, focus, m) for m in metrics]
        if all(g is not None for g in gains):
            cells = ["Improvement", ""] + [f"{g[1]:+.2%} vs {g[0]}" for g in gains if g] + [""] * len(metrics) + [""]
            body.append(cells)
        if pvalues:
            cells = (
                ["p-value (users / seeds)", ""]
                + [
                    f"{_p(pvalues[m]['p_users'])} / {_p(pvalues[m]['p_seeds'])}" if m in pvalues else ""
                    for m in metrics
                ]
                + [""] * len(metrics)
                + [""]
            )
            body.append(cells)
    return head, body


def markdown_table(
    df: pd.DataFrame,
    row_key: str,
    metrics: tuple[str, ...],
    title: str,
    focus: str | None = None,
    pvalues: dict[str, dict[str, dict[str, float]]] | None = None,
    notes: list[str] | None = None,
) -> str:
    lines = [f"# {title}", ""] + [f"{n}" for n in notes or []] + ([""] if notes else [])
    for dataset, part in df.groupby("dataset", sort=False):
        syn = " (synthetic data)" if part["synthetic"].iloc[0] else ""
        head, body = _rows(part, row_key, metrics, focus, (pvalues or {}).get(str(dataset)), ("**", "**"))
        lines += [f"## {dataset}{syn}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(c) + " |" for c in body]
        if any(FLAG in c for cells in body for c in cells):
            lines += ["", FLAG_NOTE]
        lines.append("")
    return "\n".join(lines)


def _tex(s: str) -> str:
    s = s.replace("±", r"$\pm$").replace("%", r"\%").replace("_", r"\_")
    return s.replace(f" {FLAG}", r"$^\dagger$").replace(FLAG, r"$^\dagger$")


def _short(metric: str) -> str:
    name, k = metric.split("@")
    return {"recall": "R", "precision": "P", "ndcg": "N"}.get(name, name) + "@" + k


def latex_side_by_side(
    df: pd.DataFrame,
    row_key: str,
    metrics: tuple[str, ...],
    caption: str,
    focus: str | None = None,
    pvalues: dict[str, dict[str, dict[str, float]]] | None = None,
) -> str:
    """One booktabs table in the paper's layout: a row per model (or variant), the datasets side by
    side with ``metrics`` under each, the best of each column in bold, the published value on a
    ``paper`` line under a row that has one, and the Improvement row (focus over the best other
    row) with its paired p-values when several seeds ran."""
    datasets = list(dict.fromkeys(df.dataset))
    rows = list(dict.fromkeys(df[row_key]))
    by = {(d, r): rec for d, r, rec in ((x.dataset, x[row_key], x) for _, x in df.iterrows())}
    best = {(d, m): df[df.dataset == d][m].max() for d in datasets for m in metrics}
    n = len(metrics)
    head1 = [""] + [rf"\multicolumn{{{n}}}{{c}}{{{_tex(str(d))}}}" for d in datasets]
    rules = "".join(rf"\cmidrule(lr){{{2 + i * n}-{1 + (i + 1) * n}}}" for i in range(len(datasets)))
    head2 = [_tex(row_key)] + [_short(m) for _ in datasets for m in metrics]
    out = [
        r"\begin{table*}[t]",
        r"\centering",
        r"\small",
        rf"\caption{{{_tex(caption)}}}",
        r"\begin{tabular}{l" + "r" * (n * len(datasets)) + "}",
        r"\toprule",
        " & ".join(head1) + r" \\",
        rules,
        " & ".join(head2) + r" \\",
        r"\midrule",
    ]
    any_flag = False
    for row in rows:
        cells = [_tex(str(row))]
        paper_cells, has_paper = [r"\quad paper"], False
        for d in datasets:
            rec = by.get((d, row))
            for m in metrics:
                if rec is None:
                    cells.append("--")
                    paper_cells.append("")
                    continue
                c = _tex(cell(rec[m], rec.get(f"{m}_std")))
                cells.append(rf"\textbf{{{c}}}" if rec[m] == best[(d, m)] else c)
                theirs = rec.get(f"paper_{m}")
                has_paper = has_paper or not _missing(theirs)
                flag = None if _missing(theirs) else _flag(rec, m)
                any_flag = any_flag or flag is not None
                paper_cells.append("--" if _missing(theirs) else f"{theirs:.4f}" + (r"$^\dagger$" if flag else ""))
        out.append(" & ".join(cells) + r" \\")
        if has_paper:
            out.append(" & ".join(paper_cells) + r" \\")
    if focus is not None:
        gains, ps = ["Improvement"], ["p-value (users / seeds)"]
        for d in datasets:
            part = df[df.dataset == d]
            for m in metrics:
                g = improvement(part, row_key, focus, m)
                gains.append("" if g is None else _tex(f"{g[1]:+.2%}"))
                pv = (pvalues or {}).get(str(d), {}).get(m)
                ps.append("" if pv is None else f"{_p(pv['p_users'])} / {_p(pv['p_seeds'])}")
        out += [r"\midrule", " & ".join(gains) + r" \\"]
        if pvalues:
            out.append(" & ".join(ps) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}"]
    if any_flag:
        out.append(r"\par\footnotesize " + _tex(FLAG_NOTE).replace("`", ""))
    out += [r"\end{table*}", ""]
    return "\n".join(out)


def write_table(df: pd.DataFrame, md: str | None, stem: Path, tex: str | None = None) -> list[Path]:
    """``stem``.csv always; .md and .tex where given."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".csv")]
    write_text_atomic(paths[0], df.to_csv(index=False, float_format="%.6g"))
    for text, suffix in ((md, ".md"), (tex, ".tex")):
        if text is not None:
            paths.append(stem.with_suffix(suffix))
            write_text_atomic(paths[-1], text)
    return paths
