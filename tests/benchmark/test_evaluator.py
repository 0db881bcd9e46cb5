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
        model.table += torch.from_numpy(data.valid.toarray()) * 100  # valid items on top
    unmasked = evaluate(model, data, "test", mask_valid=False)
    masked = evaluate(model, data, "test", mask_valid=True)
    assert masked.mean["recall@20"] > unmasked.mean["recall@20"]


def test_target_ranks_ties_against_target_and_nan_last() -> None:
    from benchmark.evaluator import target_ranks

    scores = torch.tensor(
        [[0.9, 0.5, 0.5, 0.1, -torch.inf], [1.0, 1.0, 1.0, 1.0, 1.0], [0.2, float("nan"), 0.3, 0.1, 0.0]]
    )
    rows = torch.tensor([0, 0, 0, 1, 2, 2])
    cols = torch.tensor([0, 1, 3, 2, 1, 2])
    # row 0: item 0 first; item 1 tied with item 2, so the tie counts ahead: rank 2; item 3: 3
    # row 1: everything tied: last; row 2: NaN target last, item 2 first
    assert target_ranks(scores, rows, cols).tolist() == [0, 2, 3, 4, 5, 0]


def test_constant_scores_get_no_hits() -> None:
    """All items tied: ties go against the target, so no lucky hits from index order."""
    data = load_dataset("synthetic-tiny")
    model = FixedScores(data)
    with torch.no_grad():
        model.table.fill_(1.0)
    res = evaluate(model, data, "test")
    assert res.mean["recall@50"] == 0.0
