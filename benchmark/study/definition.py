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

# where each real dataset of ../shared/data comes from, what it carries and its terms of use (a
# line of the reports' data section; the folder's SOURCE.txt or the data README says more)
DATA_SOURCES: dict[str, str] = {
    "tiktok": (
        "TikTok micro-videos as preprocessed for MMSSL (Wei et al., WWW 2023); visual and acoustic "
        "item features (128-d each; the published text features are not in our copy); research use."
    ),
    "amazon-scientific": (
        "Amazon Reviews 2018 (Ni, Li and McAuley, EMNLP 2019), Industrial & Scientific, as preprocessed "
        "for UniSRec (Hou et al., KDD 2022); text only (all-MiniLM-L6-v2 over title, categories and "
        "brand, 384-d); leave-one-out by time, so P@20 = R@20 / 20; research use (Amazon review data "
        "terms). See its SOURCE.txt."
    ),
    "lastfm-2k": (
        "HetRec 2011 Last.fm 2K with the multimodal features and per-user 80/10/10 split of Spillo et "
        "al. (RecSys 2025 resource); text (all-MiniLM-L6-v2 over the artists' tags, 384-d) and audio "
        "(VGGish, 128-d); non-commercial use (HetRec Last.fm terms). See its SOURCE.txt."
    ),
    "ml-100k": (
        "GroupLens MovieLens-100K, original files; text (all-MiniLM-L6-v2 over title and genres, "
        "built into the suite's cache by `python -m benchmark.data prepare movielens`); GroupLens "
        "terms (research use, no redistribution)."
    ),
    "amazon-baby": "The MMIL paper's Amazon Baby split (LATTICE preprocessing); interactions only here.",
    "amazon-sports": "The MMIL paper's Amazon Sports split (LATTICE preprocessing); interactions only here.",
    "amazon-clothing": "The MMIL paper's Amazon Clothing split (LATTICE preprocessing); interactions only here.",
}
