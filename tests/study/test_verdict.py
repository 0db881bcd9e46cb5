"""The verdict sentence: better, worse or not distinguishable, by hand-made records."""

from __future__ import annotations

import numpy as np

from benchmark.study.verdict import verdicts

from .records import fake_record

USERS = 40


def _runs(model: str, level: float, spread: float, seeds=(0, 1, 2)) -> list:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(len(model))
    out = []
    for s in seeds:
        per_user = list(np.clip(level + spread * rng.standard_normal(USERS), 0, 1))
        out.append(fake_record("d", model, s, float(np.mean(per_user)), per_user))
    return out


def test_clearly_better_is_better() -> None:
    recs = _runs("mmil", 0.30, 0.01) + _runs("lightgcn", 0.20, 0.01) + _runs("bpr", 0.10, 0.01)
    (s,) = verdicts(recs, "mmil", "MMIL")
    assert s.startswith("d: MMIL is better than the best baseline lightgcn: Recall@20 0.299")
    assert s.endswith("(p < 1e-4 over users, p < 1e-4 over seeds; 3 seeds).")


def test_clearly_worse_is_worse() -> None:
    recs = _runs("mmil", 0.10, 0.01) + _runs("lightgcn", 0.20, 0.01)
    (s,) = verdicts(recs, "mmil", "MMIL")
    assert "MMIL is worse than the best baseline lightgcn" in s


def test_noise_is_not_distinguishable() -> None:
    recs = _runs("mmil", 0.20, 0.3) + _runs("lightgcn", 0.20, 0.3)
    (s,) = verdicts(recs, "mmil", "MMIL")
    assert "not distinguishable from the best baseline lightgcn" in s


def test_one_seed_says_there_is_no_test() -> None:
    recs = _runs("mmil", 0.10, 0.01, seeds=(0,)) + _runs("lightgcn", 0.20, 0.01, seeds=(0,))
    (s,) = verdicts(recs, "mmil", "MMIL")
    assert s == "d: MMIL is below the best baseline lightgcn with one seed, which allows no test: Recall@20 " + (
        f"{recs[0].test['recall@20']:.4f} against {recs[1].test['recall@20']:.4f}."
    )


def test_no_sentence_without_the_focus_model() -> None:
    assert verdicts(_runs("lightgcn", 0.2, 0.01), "mmil", "MMIL") == []
