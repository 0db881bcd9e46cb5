"""Figures 2-4 (MMIL's sensitivity) drawn from a sensitivity frame, as PNG and PDF.

One row of panels per swept parameter, two panels per row (Recall@20, NDCG@20), one line per
dataset with the std over seeds as a band; the x axis is logarithmic where the grid is.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from ..paths import tagged  # noqa: E402
from .definition import FIGURE_METRICS, FIGURES, LABELS, TITLES  # noqa: E402


def draw(figure: int, frame: pd.DataFrame, out_dir: Path, note: str = "", tag: str = "") -> list[Path]:
    params = FIGURES[figure]
    sns.set_theme(style="whitegrid", context="paper")
    fig, axes = plt.subplots(len(params), len(FIGURE_METRICS), figsize=(7.0, 2.8 * len(params)), squeeze=False)
    for row, (param, grid) in enumerate(params):
        part = frame[frame.parameter == param]
        for col, metric in enumerate(FIGURE_METRICS):
            ax = axes[row][col]
            for dataset, d in part.groupby("dataset", sort=False):
                d = d.sort_values("value")
                ax.plot(d.value, d[metric], marker="o", label=str(dataset))
                std = d.get(f"{metric}_std")
                if std is not None and std.notna().any():
                    ax.fill_between(d.value, d[metric] - std.fillna(0), d[metric] + std.fillna(0), alpha=0.2)
            ax.set_xscale("log", base=2 if param == "dim" else 10)
            ax.set_xticks(list(grid))
            ax.set_xticklabels([f"{v:g}" for v in grid])
            ax.set_xlabel(LABELS[param])
            ax.set_ylabel(metric.capitalize().replace("Ndcg", "NDCG"))
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=max(1, len(labels)), frameon=False)
    fig.suptitle(TITLES[figure] + (f"\n{note}" if note else ""), fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    out_dir.mkdir(parents=True, exist_ok=True)
    name = tagged(f"figure{figure}", tag)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    for p in paths:
        tmp = p.with_name(f".{p.stem}.tmp{p.suffix}")
        # no creation date in the PDF: redrawing the same records gives the same bytes
        fig.savefig(tmp, dpi=200, metadata={"CreationDate": None} if p.suffix == ".pdf" else None)
        tmp.replace(p)
    plt.close(fig)
    return paths
