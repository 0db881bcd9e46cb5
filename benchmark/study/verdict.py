"""The one sentence per dataset a report opens with: does the focus model beat the best other one?

"MMIL is better than / worse than / not distinguishable from the best baseline X on D:
Recall@20 a ± s against b ± s (p = ... over users, p = ... over seeds; n seeds)". The best baseline
is the other model with the highest mean test Recall@20. A difference counts when the two-sided
paired t-test over test users (the per-user metric averaged over seeds) gives p < `ALPHA` and the
difference has the same sign at every seed; with one seed there is no test and the sentence says
so.
"""

from __future__ import annotations

import math

import numpy as np

from .record import Record
from .significance import compare

ALPHA = 0.05


def _mean_std(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.4f}"
    return f"{np.mean(values):.4f} ± {np.std(values, ddof=1):.4f}"


def format_p(p: float) -> str:
    """A p-value as the sentences print it: two significant digits, "< 1e-4" below that, "n/a"."""
    return "n/a" if math.isnan(p) else (f"{p:.2g}" if p >= 1e-4 else "< 1e-4")


def _p(p: float) -> str:
    text = format_p(p)
    return f"p {text}" if text[0] in "<n" else f"p = {text}"


def direction(mine: list[Record], theirs: list[Record], metric: str) -> tuple[int, dict[str, float]]:
    """+1 / -1 when ``mine`` is above / below ``theirs`` beyond seed noise, else 0; and the p-values.

    The module's rule, paired by seed: p over users below `ALPHA` and the same sign at every one
    of at least two shared seeds.
    """
    p = compare(mine, theirs, metric)
    a = {r.spec.seed: r.test[metric] for r in mine}
    b = {r.spec.seed: r.test[metric] for r in theirs}
    diffs = [a[s] - b[s] for s in sorted(set(a) & set(b))]
    same_sign = all(d > 0 for d in diffs) or all(d < 0 for d in diffs)
    if len(diffs) > 1 and same_sign and p["p_users"] < ALPHA:
        return (1 if diffs[0] > 0 else -1), p
    return 0, p


def verdicts(records: list[Record], focus: str, label: str, metric: str = "recall@20") -> list[str]:
    """One sentence per dataset that has runs of ``focus`` and of at least one other model."""
    out = []
    for dataset in dict.fromkeys(r.spec.dataset for r in records):
        by_model: dict[str, list[Record]] = {}
        for r in records:
            if r.spec.dataset == dataset:
                by_model.setdefault(r.spec.model, []).append(r)
        if focus not in by_model or len(by_model) < 2:
            continue
        others = {m: rs for m, rs in by_model.items() if m != focus}
        best = max(others, key=lambda m: np.mean([r.test[metric] for r in others[m]]))
        mine, theirs = by_model[focus], others[best]
        a, b = [r.test[metric] for r in mine], [r.test[metric] for r in theirs]
        name = metric.replace("recall", "Recall").replace("ndcg", "NDCG").replace("precision", "Precision")
        numbers = f"{name} {_mean_std(a)} against {_mean_std(b)}"
        seeds = sorted({r.spec.seed for r in mine} & {r.spec.seed for r in theirs})
        if len(seeds) < 2:
            higher = "above" if np.mean(a) > np.mean(b) else "below"
            out.append(
                f"{dataset}: {label} is {higher} the best baseline {best} with one seed, which allows no test: {numbers}."
            )
            continue
        sign, p = direction(mine, theirs, metric)
        word = {1: "better than", -1: "worse than", 0: "not distinguishable from"}[sign]
        out.append(
            f"{dataset}: {label} is {word} the best baseline {best}: {numbers} "
            f"({_p(p['p_users'])} over users, {_p(p['p_seeds'])} over seeds; {len(seeds)} seeds)."
        )
    return out
