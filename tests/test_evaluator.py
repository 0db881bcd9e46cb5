"""The evaluator against a naive per-user reference, masking, and batch-size independence."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from benchmark.data import load_dataset
from benchmark.evaluator import evaluate
from benchmark.model import Recommender


class FixedScores(Recommender):
    """Scores from a fixed random matrix (a stand-in model for evaluator tests)."""

    def __init__(self, data, seed: int = 0) -> None:  # type: ignore[no-untyped-def]
        super().__init__(data, None)
        g = torch.Generator().manual_seed(seed)
        self.table = torch.nn.Parameter(torch.rand(data.n_users, data.n_items, generator=g))

    def score(self, users: torch.Tensor) -> torch.Tensor:
        return self.table[users]


def naive(scores: np.ndarray, data, split: str, k: int = 20) -> dict[str, float]:  # type: ignore[no-untyped-def]
    target = getattr(data, split)
    rec, prec, ndcg = [], [], []
    for u in range(data.n_users):
        rel = set(target[u].indices)
        if not rel:
            continue
        s = scores[u].copy()
        s[data.train[u].indices] = -np.inf
        top = np.argsort(-s, kind="stable")[:k]
        hits = [i in rel for i in top]
        rec.append(sum(hits) / len(rel))
        prec.append(sum(hits) / k)
        dcg = sum(1 / math.log2(r + 2) for r, h in enumerate(hits) if h)
        idcg = sum(1 / math.log2(r + 2) for r in range(min(len(rel), k)))
        ndcg.append(dcg / idcg)
    return {"recall@20": np.mean(rec), "precision@20": np.mean(prec), "ndcg@20": np.mean(ndcg)}


@pytest.mark.parametrize("split", ["valid", "test"])
def test_matches_naive_reference(split: str) -> None:
    data = load_dataset("synthetic-tiny")
    model = FixedScores(data)
    res = evaluate(model, data, split, batch_users=37)
    ref = naive(model.table.detach().numpy(), data, split)
    for k, v in ref.items():
        assert res.mean[k] == pytest.approx(v, rel=1e-5)
    assert len(res.per_user["recall@20"]) == len(res.users)


def test_batch_size_does_not_change_results() -> None:
    data = load_dataset("synthetic-tiny")
    model = FixedScores(data, seed=3)
    a = evaluate(model, data, "test", batch_users=7)
    b = evaluate(model, data, "test", batch_users=10_000)
    for k in a.mean:
        np.testing.assert_allclose(a.per_user[k], b.per_user[k], rtol=1e-6)


def test_training_items_never_ranked() -> None:
    """A model that scores training items highest still gets none of them in its top K."""
    data = load_dataset("synthetic-tiny")
    model = FixedScores(data)
    with torch.no_grad():
        model.table += torch.from_numpy(data.train.toarray()) * 100
    res = evaluate(model, data, "test")
    # with training items masked, results equal those of the plain random table
    plain = evaluate(FixedScores(data), data, "test")
    assert res.mean == pytest.approx(plain.mean)


def test_mask_valid_at_test() -> None:
    data = load_dataset("synthetic-tiny")
    model = FixedScores(data)
    with torch.no_grad():
        model.table += torch.from_numpy(data.valid.toarray()) * 100   # valid items on top
    unmasked = evaluate(model, data, "test", mask_valid=False)
    masked = evaluate(model, data, "test", mask_valid=True)
    assert masked.mean["recall@20"] > unmasked.mean["recall@20"]
