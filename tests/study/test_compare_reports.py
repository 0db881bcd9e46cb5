"""Two reports compared cell by cell: a real shift is found, noise and equality are named as such."""

from __future__ import annotations

import numpy as np

from benchmark.study.compare_reports import compare_runs

from .records import fake_record

USERS = 60


def _runs(level: float, spread: float, rng_seed: int, model: str = "lattice") -> list:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(rng_seed)
    out = []
    for s in (0, 1, 2):
        per_user = list(np.clip(level + spread * rng.standard_normal(USERS), 0, 1))
        out.append(fake_record("tiktok", model, s, float(np.mean(per_user)), per_user))
    return out


def _verdicts(rows: list[str]) -> dict[str, str]:
    return {r.split("|")[3].strip(): r.split("|")[-2].strip() for r in rows[2:]}


def test_a_clear_shift_is_named_with_its_direction() -> None:
    rows = compare_runs(_runs(0.30, 0.01, 1), _runs(0.20, 0.01, 2))
    assert _verdicts(rows)["recall@20"] == "A higher"
    assert _verdicts(rows)["ndcg@20"] == "A higher"
    assert "| < 1e-4 |" in rows[2]


def test_noise_is_within_seed_noise_and_equal_runs_are_identical() -> None:
    assert _verdicts(compare_runs(_runs(0.2, 0.3, 1), _runs(0.2, 0.3, 2)))["recall@20"] == "within seed noise"
    same = _runs(0.2, 0.05, 3)
    rows = compare_runs(same, same)
    assert _verdicts(rows)["recall@20"] == "identical"
    assert "0.2" in rows[2].split("|")[4] and rows[2].split("|")[4] == rows[2].split("|")[5]


def test_cells_missing_on_one_side_are_left_out() -> None:
    rows = compare_runs(_runs(0.2, 0.05, 1, "micro"), _runs(0.2, 0.05, 2, "lattice"))
    assert rows[2:] == []
