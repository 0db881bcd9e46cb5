"""Numbers reported in the MMIL paper, keyed by (dataset, model) -> {metric: value}.

Only numbers whose source could be verified are listed; every other cell of the paper's tables
is left out and rendered as "n/a" (we never fill a paper column from memory). The paper's
Table 2 and Table 3 were not available to this project when this file was written: add their
values here (with the source in a comment) and every rendered table picks them up.

Datasets of the paper: Amazon Clothing, Sports, Baby in the LATTICE preprocessing, which are
``amazon-clothing``, ``amazon-sports`` and ``amazon-baby`` under ``../shared/data``.
"""
from __future__ import annotations

# LightGCN Recall@20 as the paper reports it, quoted in the platform issue (#2) as the bar our
# LightGCN must reach on the same splits.
TABLE2: dict[tuple[str, str], dict[str, float]] = {
    ("amazon-clothing", "lightgcn"): {"recall@20": 0.0470},
    ("amazon-sports", "lightgcn"): {"recall@20": 0.0782},
    ("amazon-baby", "lightgcn"): {"recall@20": 0.0698},
}

# Table 3 (ablation): (dataset, variant) -> metrics. Not available yet.
TABLE3: dict[tuple[str, str], dict[str, float]] = {}


def paper_value(table: dict[tuple[str, str], dict[str, float]], dataset: str, row: str,
                metric: str) -> float | None:
    return table.get((dataset, row), {}).get(metric)
