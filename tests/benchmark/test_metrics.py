"""Metrics against hand-computed values."""

import math

import pytest
import torch

from benchmark.metrics import topk_metrics


def log2(x: float) -> float:
    return math.log(x, 2)


def test_hand_computed_values() -> None:
    hits = torch.zeros(3, 50, dtype=torch.bool)
    hits[0, [0, 2]] = True  # user 0: 3 relevant, hits at ranks 1 and 3
    hits[1, 25] = True  # user 1: 30 relevant (> K), one hit outside the top 20
    n_rel = torch.tensor([3, 30, 2])  # user 2: relevant, none ranked in the top 50
    m = topk_metrics(hits, n_rel, ks=(10, 20, 50))
    assert m["recall@20"][0].item() == pytest.approx(2 / 3)
    assert m["precision@20"][0].item() == pytest.approx(2 / 20)
    idcg = 1 + 1 / log2(3) + 1 / log2(4)
    assert m["ndcg@20"][0].item() == pytest.approx((1 + 1 / log2(4)) / idcg, rel=1e-6)
    # more relevant items than K: IDCG over K ranks, recall over all 30
    assert m["recall@20"][1].item() == 0.0
    assert m["recall@50"][1].item() == pytest.approx(1 / 30)
    idcg50 = sum(1 / log2(j + 1) for j in range(1, 31))
    assert m["ndcg@50"][1].item() == pytest.approx((1 / log2(27)) / idcg50, rel=1e-6)
    for k in ("recall@20", "precision@20", "ndcg@20"):
        assert m[k][2].item() == 0.0


def test_perfect_ranking_scores_one() -> None:
    hits = torch.zeros(1, 50, dtype=torch.bool)
    hits[0, :5] = True
    m = topk_metrics(hits, torch.tensor([5]))
    assert m["recall@10"].item() == pytest.approx(1.0)
    assert m["ndcg@10"].item() == pytest.approx(1.0)
    assert m["precision@10"].item() == pytest.approx(0.5)


def test_needs_enough_ranks() -> None:
    with pytest.raises(ValueError):
        topk_metrics(torch.zeros(1, 10, dtype=torch.bool), torch.tensor([1]), ks=(20,))
