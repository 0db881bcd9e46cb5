"""FREEDOM: the frozen item-item graph, the degree-sensitive edge pruning, the eval graph and the
loss, on hand-made inputs (the generic contract tests live in test_models.py).

Frozen graph input (4 items, 2-d "visual" features; item 1 is scaled to show that the graph is
cosine, not dot product):

    x0 = [1, 0]   x1 = [6, 2] (direction [3, 1])   x2 = [1, 3]   x3 = [-2, 1]

    cosines         x0       x1       x2       x3
    x0              1        0.9487   0.3162  -0.8944     (3/sqrt10, 1/sqrt10, -2/sqrt5)
    x1              0.9487   1        0.6    -0.7071     (6/10, -5/sqrt50)
    x2              0.3162   0.6      1        0.1414     (1/sqrt50)
    x3             -0.8944  -0.7071   0.1414   1

    k = 2 (self + 1):  rows -> {0, 1}, {1, 0}, {2, 1}, {3, 2}          every entry 1/2
    k = 3 (self + 2):  rows -> {0, 1, 2}, {1, 0, 2}, {2, 1, 0}, {3, 2, 1}   every entry 1/3

(by dot product row 2 would rank item 1 (12) above itself (10); the cosine keeps itself first).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from baselines.freedom import FREEDOM, frozen_graph, modality_weights, pruned_adjacency
from benchmark.config import build_config
from benchmark.data import from_triples, load_dataset
from benchmark.graphs import adjacency_operator
from benchmark.model import Batch

X = np.array([[1, 0], [6, 2], [1, 3], [-2, 1]], dtype=np.float32)
KNN_2 = [[0, 1], [1, 0], [2, 1], [3, 2]]
KNN_3 = [[0, 1, 2], [1, 0, 2], [2, 1, 0], [3, 2, 1]]


def dense_from_rows(rows: list[list[int]], value: float, n: int) -> torch.Tensor:
    out = torch.zeros(n, n)
    for r, cols in enumerate(rows):
        out[r, cols] = value
    return out


@pytest.mark.parametrize("k, rows", [(2, KNN_2), (3, KNN_3)], ids=["k2", "k3"])
def test_frozen_graph_by_hand(k: int, rows: list[list[int]]) -> None:
    s = frozen_graph(X, k)
    assert s.layout == torch.sparse_coo and s._nnz() == 4 * k
    torch.testing.assert_close(s.to_dense(), dense_from_rows(rows, 1.0 / k, 4))


def test_modality_weights_rule() -> None:
    assert modality_weights(("t", "v"), 0.1) == pytest.approx({"t": 0.9, "v": 0.1})  # the reference
    assert modality_weights(("a", "v"), 0.1) == pytest.approx({"a": 0.9, "v": 0.1})  # TikTok
    assert modality_weights(("t",), 0.1) == {"t": 1.0}
    assert modality_weights(("v",), 0.1) == {"v": 1.0}
    assert modality_weights(("a", "t"), 0.1) == pytest.approx({"a": 0.5, "t": 0.5})
    assert modality_weights(("a", "t", "v"), 0.2) == pytest.approx({"a": 0.4, "t": 0.4, "v": 0.2})


def tiny_data():  # type: ignore[no-untyped-def]
    """3 users, 4 items. Train: u0-{i0, i1, i2}, u1-{i0, i1}, u2-{i0}; degrees u [3, 2, 1],
    i [3, 2, 1, 0]. Text features: x_t = rows of a shuffled identity with item 3 near item 0."""
    u = np.array([0, 0, 0, 1, 1, 2, 2, 1, 0])
    i = np.array([0, 1, 2, 0, 1, 0, 3, 3, 3])
    s = np.array([0, 0, 0, 0, 0, 0, 1, 1, 2])
    t = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0.2, 0]], dtype=np.float32)
    return from_triples("tiny", u, i, s, 3, 4, {"v": X, "t": t})


def make(data, **overrides) -> FREEDOM:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    return FREEDOM(data, build_config(FREEDOM.Config, overrides))


def test_mixed_item_graph_is_the_weighted_sum() -> None:
    # text kNN (k = 2): cos(t0, t3) = 1/sqrt(1.04) = 0.98 -> rows {0, 3}, {1, 3}, {2, 0|1|3 tie}...
    # row 2 is orthogonal to all others (a tie), so only rows 0, 1, 3 are checked by hand
    model = make(tiny_data(), knn_k=2)
    s = model.item_graph.a.to_dense()
    visual = dense_from_rows(KNN_2, 0.5, 4)
    text_rows = {0: [0, 3], 1: [1, 3], 3: [3, 0]}
    for r, cols in text_rows.items():
        text = torch.zeros(4)
        text[cols] = 0.5
        torch.testing.assert_close(s[r], 0.1 * visual[r] + 0.9 * text)
    torch.testing.assert_close(s.sum(1), torch.ones(4))  # both mixed graphs are row means


def test_sampling_probabilities_use_full_graph_degrees() -> None:
    model = make(tiny_data(), knn_k=2)
    du, di = [3, 2, 1], [3, 2, 1, 0]
    got = {(int(r), int(c)): float(p) for r, c, p in zip(model.edge_rows, model.edge_cols, model.edge_prob)}
    want = {(r, c): 1 / math.sqrt(du[r] * di[c]) for r, c in [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (2, 0)]}
    assert got == pytest.approx(want)


def test_pruned_adjacency_by_hand() -> None:
    """Kept edges u0-i0, u0-i1, u1-i1 (of 2 users, 3 items): new degrees u [2, 1], i [1, 2, 0];
    values u0-i0 1/sqrt(2*1), u0-i1 1/sqrt(2*2) = 1/2, u1-i1 1/sqrt(1*2); nodes [u0 u1 i0 i1 i2]."""
    a = pruned_adjacency(torch.tensor([0, 0, 1]), torch.tensor([0, 1, 1]), 2, 3)
    r = 1 / math.sqrt(2)
    want = torch.tensor(
        [
            [0, 0, r, 0.5, 0],
            [0, 0, 0, r, 0],
            [r, 0, 0, 0, 0],
            [0.5, r, 0, 0, 0],
            [0, 0, 0, 0, 0],
        ]
    )
    assert a.layout == torch.sparse_csr
    torch.testing.assert_close(a.to_dense(), want)


def kept_edges(model: FREEDOM) -> torch.Tensor:
    assert model.masked_adj is not None
    return model.masked_adj.a.to_sparse_coo().coalesce()


@pytest.mark.parametrize("dropout", [0.8, 0.9, 0.5])
def test_pruning_keeps_round_share_of_distinct_edges_with_new_degrees(dropout: float) -> None:
    data = load_dataset("synthetic-tiny")
    model = make(data, dropout=dropout)
    model.train()
    model.start_epoch(1)
    a = kept_edges(model)
    n_users, n_edges = data.n_users, data.train.nnz
    idx, val = a.indices(), a.values()
    n = round((1 - dropout) * n_edges)
    assert a._nnz() == 2 * n  # both directions, no duplicates (coalesced, so distinct)
    torch.testing.assert_close(a.to_dense(), a.to_dense().T)
    upper = idx[0] < n_users
    users, items = idx[0][upper], idx[1][upper] - n_users
    assert len(users) == n and (items >= 0).all()
    train = torch.from_numpy(data.train.toarray())
    assert (train[users, items] == 1).all()  # only training edges
    du = torch.bincount(users, minlength=n_users).float()
    di = torch.bincount(items, minlength=data.n_items).float()
    torch.testing.assert_close(val[upper], 1 / torch.sqrt(du[users] * di[items]))


def test_hub_edges_are_dropped_more_often_than_leaf_edges() -> None:
    """4 hub users x 4 hub items, all linked (16 edges, P ~ 1/sqrt(4*4) = 1/4), and 16 leaf
    pairs (P ~ 1); half the edges kept. Leaf edges must survive far more often."""
    hub_u, hub_i = np.meshgrid(np.arange(4), np.arange(4), indexing="ij")
    u = np.concatenate([hub_u.ravel(), 4 + np.arange(16), [0, 1]])
    i = np.concatenate([hub_i.ravel(), 4 + np.arange(16), [5, 6]])
    s = np.concatenate([np.zeros(32, dtype=int), [1, 2]])
    feats = {"v": np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)}
    model = make(from_triples("hubs", u, i, s, 20, 20, feats), dropout=0.5)
    model.train()
    kept_hub = kept_leaf = 0
    draws = 200
    for epoch in range(draws):
        model.start_epoch(epoch)
        users = kept_edges(model).indices()[0]
        users = users[users < 20]
        kept_hub += int((users < 4).sum())
        kept_leaf += int((users >= 4).sum())
    assert kept_hub + kept_leaf == 16 * draws
    hub_rate, leaf_rate = kept_hub / (16 * draws), kept_leaf / (16 * draws)
    # expected about 0.2 vs 0.8; a generous margin
    assert leaf_rate > hub_rate + 0.3, (hub_rate, leaf_rate)


def test_same_seed_same_masks() -> None:
    data = load_dataset("synthetic-tiny")
    model = make(data)
    model.train()

    def masks(seed: int) -> list[torch.Tensor]:
        torch.manual_seed(seed)
        out = []
        for epoch in range(3):
            model.start_epoch(epoch)
            out.append(kept_edges(model).indices())
        return out

    a, b, c = masks(3), masks(3), masks(4)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], a[1])  # a fresh mask every epoch
    assert not torch.equal(a[0], c[0])


def test_eval_uses_the_full_graph() -> None:
    data = load_dataset("synthetic-tiny")
    model = make(data)
    users = torch.arange(20)
    scores = []
    for epoch in range(2):
        model.train()
        model.start_epoch(epoch)
        model.eval()
        with torch.no_grad():
            model.prepare_scoring()
            scores.append(model.score(users))
    torch.testing.assert_close(scores[0], scores[1])
    # and they are the LightGCN layer mean on D^-1/2 A D^-1/2 plus S E_item, written out densely
    with torch.no_grad():
        a = adjacency_operator(data.train).a.to_dense()
        e0 = torch.cat([model.user.weight, model.item.weight])
        e = (e0 + a @ e0 + a @ (a @ e0)) / 3
        items = e[data.n_users :] + model.item_graph.a.to_dense() @ model.item.weight
        torch.testing.assert_close(scores[0], e[:20] @ items.T, rtol=1e-4, atol=1e-5)
        # in training mode the pruned graph is used, and it changes the numbers
        model.train()
        assert not torch.allclose(model()[0][:20], e[:20])


def test_loss_without_start_epoch_and_its_terms() -> None:
    data = load_dataset("synthetic-tiny")
    model = make(data, reg_weight=1e-3)
    model.train()
    assert model.masked_adj is None
    g = torch.Generator().manual_seed(1)
    b = Batch(
        torch.randint(0, data.n_users, (64,), generator=g),
        torch.randint(0, data.n_items, (64,), generator=g),
        torch.randint(0, data.n_items, (64,), generator=g),
    )
    out = model.loss(b)  # draws the first mask itself
    assert model.masked_adj is not None
    # the reference: fused tables, every item projected, then gathered
    users, items = model()
    u, i, j = users[b.users], items[b.pos], items[b.neg]

    def bpr(u: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        return -torch.nn.functional.logsigmoid((u * i).sum(1) - (u * j).sum(1)).mean()

    rank = bpr(u, i, j)
    modal = sum(bpr(u, p[b.pos], p[b.neg]) for p in model.feats.transformed().values())
    torch.testing.assert_close(out["bpr"], rank)
    torch.testing.assert_close(out["modal_bpr"], modal)
    torch.testing.assert_close(out["loss"], rank + 1e-3 * modal)
    out["loss"].backward()
    for m in model.modalities:
        assert model.feats.raw[m].grad is not None and model.feats.trs[m].weight.grad is not None


def test_several_negatives_and_no_pruning() -> None:
    data = load_dataset("synthetic-tiny")
    model = make(data, dropout=0.0, train_raw_features=False)
    model.train()
    model.start_epoch(1)
    assert model.ui_graph() is model.adj and model.masked_adj is None
    assert not any(n.startswith("feats.raw") for n, _ in model.named_parameters())
    b = Batch(torch.arange(8), torch.arange(8), torch.arange(24).reshape(8, 3) % data.n_items)
    out = model.loss(b)
    assert torch.isfinite(out["loss"]) and out["loss"].ndim == 0
    out["loss"].backward()


def test_bad_dropout_is_refused() -> None:
    with pytest.raises(ValueError, match="dropout"):
        make(load_dataset("synthetic-tiny"), dropout=1.0)
