"""Render artefacts from run records only: Markdown and CSV tables."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd



def cell(mean: float, std: float | None) -> str:
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return f"{mean:.4f}"
    return f"{mean:.4f} ± {std:.4f}"


def paper_cell(ours: float, theirs: float | None) -> str:
    if theirs is None or (isinstance(theirs, float) and math.isnan(theirs)):
        return "n/a"
    return f"{theirs:.4f} ({(ours - theirs) / theirs:+.1%})"


def markdown_table(df: pd.DataFrame, row_key: str, metrics: tuple[str, ...], title: str) -> str:
    """One Markdown table per dataset: ours (mean ± std over seeds), the paper's value with our
    relative difference, the best of each column of ours in bold."""
    lines = [f"# {title}", ""]
    for dataset, part in df.groupby("dataset", sort=False):
        syn = " (synthetic data)" if part["synthetic"].iloc[0] else ""
        lines += [f"## {dataset}{syn}", ""]
        head = [row_key, "seeds"] + [f"{m}" for m in metrics] + [f"paper {m} (ours vs paper)" for m in metrics] + ["s/epoch"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        best = {m: part[m].max() for m in metrics}
        for _, r in part.iterrows():
            cells = [str(r[row_key]) + (" (capped)" if r["capped"] else ""), str(int(r["n_seeds"]))]
            for m in metrics:
                c = cell(r[m], r.get(f"{m}_std"))
                cells.append(f"**{c}**" if r[m] == best[m] else c)
            cells += [paper_cell(r[m], r.get(f"paper_{m}")) for m in metrics]
            cells.append(f"{r['seconds_per_epoch']:.2f}")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def write_table(df: pd.DataFrame, md: str, stem: Path) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    csv, mdp = stem.with_suffix(".csv"), stem.with_suffix(".md")
    tmp = csv.with_name(f".{csv.name}.tmp")
    df.to_csv(tmp, index=False, float_format="%.6g")
    tmp.replace(csv)
    tmp = mdp.with_name(f".{mdp.name}.tmp")
    tmp.write_text(md)
    tmp.replace(mdp)
    return [csv, mdp]
