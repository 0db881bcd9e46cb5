"""Paired significance tests of one model against another on the same runs' test users.

- over users: the per-user metric averaged over seeds, paired by user (the users are the same
  in every run on a dataset), two-sided paired t-test;
- over seeds: the mean metric per seed, paired by seed, two-sided paired t-test (needs >= 2 seeds).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from .record import Record


def paired_pvalue(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided paired t-test p-value of a vs b (nan when undefined: < 2 pairs or no variance)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in shape: {a.shape} vs {b.shape}")
    d = a - b
    if len(d) < 2 or np.allclose(d, d[0]):
        return float("nan") if len(d) < 2 or d[0] == 0 else 0.0
    return float(stats.ttest_rel(a, b).pvalue)


def compare(records_a: list[Record], records_b: list[Record], metric: str = "recall@20") -> dict[str, float]:
    """p-values of model A vs model B from their records on one dataset (paired by seed)."""
    by_seed_a = {r.spec.seed: r for r in records_a}
    by_seed_b = {r.spec.seed: r for r in records_b}
    seeds = sorted(set(by_seed_a) & set(by_seed_b))
    if not seeds:
        return {"p_users": float("nan"), "p_seeds": float("nan"), "n_seeds": 0}
    seeds_a = [by_seed_a[s].test[metric] for s in seeds]
    seeds_b = [by_seed_b[s].test[metric] for s in seeds]
    p_users = float("nan")
    # records written before precision@20 was kept per user have only its mean: no test over users
    if all(metric in by_seed[s].test_per_user for by_seed in (by_seed_a, by_seed_b) for s in seeds):
        users_a = np.mean([by_seed_a[s].test_per_user[metric] for s in seeds], axis=0)
        users_b = np.mean([by_seed_b[s].test_per_user[metric] for s in seeds], axis=0)
        p_users = paired_pvalue(users_a, users_b)
    return {"p_users": p_users, "p_seeds": paired_pvalue(seeds_a, seeds_b), "n_seeds": len(seeds)}
