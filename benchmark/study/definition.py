"""The paper's study, in one place: which models Table 2 compares, which model is the focus,
Table 3's variants, the sensitivity grids of Figures 2-4 and their labels, the metrics each
artefact shows, and the datasets the embedded default runs on.

Everything else in `benchmark.study` reads these names; a study of another paper changes this
module only.
"""

from __future__ import annotations

from typing import Any

from mmil import VARIANTS as MMIL_VARIANTS

# Table 2's rows, in the paper's order; the focus model's row gets the Improvement line
TABLE2_MODELS: tuple[str, ...] = (
    "bpr",
    "vbpr",
    "lightgcn",
    "mmgcn",
    "grcn",
    "mmgcl",
    "huign",
    "slmrec",
    "lattice",
    "micro",
    "hcgcn",
    "mmil",
)
FOCUS = "mmil"
TABLE2_METRICS: tuple[str, ...] = ("recall@20", "precision@20", "ndcg@20")

# Table 3: variant name -> the focus model's config overrides that make it
VARIANTS: dict[str, dict[str, Any]] = dict(MMIL_VARIANTS)
ABLATION_METRICS: tuple[str, ...] = ("recall@20", "ndcg@20")
ABLATION_SEEDS: tuple[int, ...] = (0, 1, 2)  # mmil.md 6b

# Figures 2-4: the focus model's parameters swept one at a time, the others at their defaults
LOG_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
FIGURES: dict[int, tuple[tuple[str, tuple[float, ...]], ...]] = {
    2: (("mu", LOG_GRID), ("theta", LOG_GRID)),
    3: (("gamma", LOG_GRID), ("tau", (0.005, 0.05, 0.5, 5.0, 50.0))),
    4: (("dim", (16, 32, 64, 128, 256, 512)),),
}
FIGURE_METRICS: tuple[str, ...] = ("recall@20", "ndcg@20")
LABELS = {
    "mu": "μ (weight of L_d)",
    "theta": "θ (weight of L_c)",
    "gamma": "γ (weight of L_cl)",
    "tau": "τ (InfoNCE temperature)",
    "dim": "d (embedding size)",
}
TITLES = {
    2: "Figure 2: sensitivity to μ and θ",
    3: "Figure 3: sensitivity to γ and τ",
    4: "Figure 4: sensitivity to the embedding size d",
}

# the embedded default: the synthetic presets shaped after the paper's three Amazon sets
SYNTHETIC_DEFAULT: tuple[str, ...] = ("synthetic-clothing", "synthetic-sports", "synthetic-baby")
