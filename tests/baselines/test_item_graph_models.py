"""LATTICE, MICRO, HCGCN: the sparse item graphs, their refresh, MICRO's chunked InfoNCE and
HCGCN's clusters (the generic contract tests live in test_models.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from baselines._item_graphs import chunked_contrastive
from benchmark.config import build_config
from benchmark.data import load_dataset
from benchmark.registry import get_model

from .batches import random_batch

K = 10


@pytest.fixture(scope="module")
def data():  # type: ignore[no-untyped-def]
    return load_dataset("synthetic-tiny")


def make(name: str, data, **overrides):  # type: ignore[no-untyped-def]
    cls = get_model(name)
    torch.manual_seed(0)
    return cls(data, build_config(cls.Config, overrides))


def row_counts(a: torch.Tensor) -> torch.Tensor:
    a = a.to_sparse_coo().coalesce() if a.layout != torch.sparse_coo else a.coalesce()
    return torch.bincount(a.indices()[0], minlength=a.shape[0])


# ---- dense references of the LATTICE / MICRO code, for tiny inputs only ----


def dense_knn(x: torch.Tensor, k: int) -> torch.Tensor:
    xn = x / x.norm(dim=1, keepdim=True)
    sim = xn @ xn.T
    v, i = sim.topk(k, dim=1)
    return torch.zeros_like(sim).scatter_(1, i, v)


def dense_sym(a: torch.Tensor) -> torch.Tensor:
    d = a.sum(1).pow(-0.5)
    d[torch.isinf(d)] = 0
    return d[:, None] * a * d[None, :]


def dense_grace(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> torch.Tensor:
    f = lambda x: torch.exp(x / tau)  # noqa: E731
    a, b = F.normalize(z1), F.normalize(z2)
    refl, between = f(a @ a.T), f(a @ b.T)
    return -torch.log(between.diag() / (refl.sum(1) + between.sum(1) - refl.diag())).mean()


# ---- graphs ----


@pytest.mark.parametrize("name", ["lattice", "micro", "hcgcn"])
def test_knn_graphs_keep_exactly_k_per_row(name: str, data) -> None:  # type: ignore[no-untyped-def]
    model = make(name, data)
    feats = model.feats.transformed()
    for m in model.modalities:
        assert (row_counts(model.original(m)) == K).all()
        assert (row_counts(model.learned_knn(feats[m])) == K).all()


def test_lattice_graph_is_sparse_and_matches_dense_reference(data) -> None:  # type: ignore[no-untyped-def]
    model = make("lattice", data)
    with torch.no_grad():
        a = model.build_item_graphs()["item"]
        assert a.layout == torch.sparse_coo
        counts = row_counts(a)
        assert counts.max() <= 2 * len(model.modalities) * K and a._nnz() < data.n_items**2 / 2
        # the reference's dense construction, written out
        w = torch.softmax(model.modal_weight, 0)
        feats = model.feats.transformed()
        learned = dense_sym(sum(w[k] * dense_knn(feats[m], K) for k, m in enumerate(model.modalities)))
        orig = sum(w[k] * dense_sym(dense_knn(model.feats.table(m), K)) for k, m in enumerate(model.modalities))
        ref = 0.1 * learned + 0.9 * orig
    torch.testing.assert_close(a.to_dense(), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["micro", "hcgcn"])
def test_micro_style_graphs_are_sparse_mixes(name: str, data) -> None:  # type: ignore[no-untyped-def]
    model = make(name, data)
    with torch.no_grad():
        graphs = model.build_item_graphs()
        feats = model.feats.transformed()
        for m in model.modalities:
            a = graphs[m]
            assert a.layout == torch.sparse_coo and row_counts(a).max() <= 2 * K
            ref = 0.1 * dense_sym(dense_knn(feats[m], K)) + 0.9 * dense_sym(dense_knn(model.feats.table(m), K))
            torch.testing.assert_close(a.to_dense(), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["lattice", "micro", "hcgcn"])
def test_learned_graph_has_gradient_on_the_refresh_batch_only(name: str, data) -> None:  # type: ignore[no-untyped-def]
    model = make(name, data)
    model.train()
    model.start_epoch(1)
    m = model.modalities[0]
    grads = []
    for _ in range(2):
        model.zero_grad(set_to_none=True)
        model.loss(random_batch(data))["loss"].backward()
        grads.append(model.feats.trs[m].weight.grad)
    # only the learned graph reads trs: gradient on the refresh batch, none on the next one
    assert grads[0] is not None and grads[0].abs().sum() > 0
    assert grads[1] is None
    model.start_epoch(2)
    model.zero_grad(set_to_none=True)
    model.loss(random_batch(data))["loss"].backward()
    assert model.feats.raw[m].grad is not None  # trainable raw tables, reached through the graph


def test_raw_features_can_be_frozen(data) -> None:  # type: ignore[no-untyped-def]
    model = make("lattice", data, train_raw_features=False)
    names = [n for n, _ in model.named_parameters()]
    assert not any(n.startswith("feats.raw") for n in names)
    assert not any(k.startswith("feats.raw") for k in model.state_dict())
    model.train()
    model.loss(random_batch(data))["loss"].backward()


def test_scores_depend_on_the_state_dict_only(data) -> None:  # type: ignore[no-untyped-def]
    a = make("lattice", data)
    opt = torch.optim.Adam(a.parameters(), lr=0.05)
    a.train()
    for epoch in range(2):
        a.start_epoch(epoch)
        for _ in range(2):
            opt.zero_grad()
            a.loss(random_batch(data))["loss"].backward()
            opt.step()
    b = make("lattice", data)
    b.load_state_dict(a.state_dict())
    users = torch.arange(10)
    with torch.no_grad():
        for m in (a, b):
            m.eval()
            m.prepare_scoring()
        torch.testing.assert_close(a.score(users), b.score(users))


# ---- MICRO's all-items InfoNCE ----


@pytest.mark.parametrize("rows", [1, 7, 32, 45, 1000])
def test_chunked_contrastive_equals_unchunked(rows: int) -> None:
    torch.manual_seed(0)
    z1 = torch.randn(45, 16, dtype=torch.float64, requires_grad=True)
    z2 = torch.randn(45, 16, dtype=torch.float64, requires_grad=True)
    ref = dense_grace(z1, z2, 0.5)
    g_ref = torch.autograd.grad(ref, (z1, z2))
    got = chunked_contrastive(z1, z2, 0.5, rows=rows)
    g_got = torch.autograd.grad(got, (z1, z2))
    torch.testing.assert_close(got, ref)
    for x, y in zip(g_got, g_ref):
        torch.testing.assert_close(x, y)


def test_micro_contrast_term_is_the_reference_formula(data) -> None:  # type: ignore[no-untyped-def]
    model = make("micro", data, contrast_chunk=16)
    model.train()
    _, _, hs, fused = model.forward()
    got = model.loss(random_batch(data))["contrast"]
    ref = 0.03 * sum(dense_grace(h, fused, 0.5) for h in hs)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)


# ---- HCGCN's clusters ----


def test_hcgcn_clusters_are_valid_assignments(data) -> None:  # type: ignore[no-untyped-def]
    model = make("hcgcn", data, n_user_groups=3, n_item_clusters=4)
    with torch.no_grad():
        graphs = model.build_item_graphs()
    g, c = model.user_groups, model.item_clusters
    assert g.shape == (data.n_users,) and g.dtype == torch.long and 0 <= g.min() and g.max() < 3
    assert c.shape == (data.n_items,) and c.dtype == torch.long and 0 <= c.min() and c.max() < 4
    # the group subgraphs partition the user-item graph
    total = sum(a.a.to_dense() for a in model.group_adj)
    torch.testing.assert_close(total, model.adj.a.to_dense())
    u = data.n_users
    for k, a in enumerate(model.group_adj):
        idx = a.a.to_sparse_coo().coalesce().indices()
        ends = torch.where(idx[0] < u, idx[0], idx[1])
        user_edges = ends < u
        assert (g[ends[user_edges]] == k).all()
    # within-cluster item graphs keep only intra-cluster edges, and all of them
    for m in model.modalities:
        inner, full = graphs[f"{m}:in"].coalesce(), graphs[m].coalesce()
        i = inner.indices()
        assert (c[i[0]] == c[i[1]]).all()
        fi = full.indices()
        assert inner._nnz() == int((c[fi[0]] == c[fi[1]]).sum())


def test_hcgcn_clusters_follow_the_parameters(data) -> None:  # type: ignore[no-untyped-def]
    model = make("hcgcn", data, n_user_groups=2)
    model.eval()
    with torch.no_grad():
        model.prepare_scoring()
        e0 = torch.cat([model.user.weight, model.item.weight])
        f = F.normalize(e0 + model.adj(e0), dim=1)[: data.n_users]
        assert torch.equal(model.user_groups, model.ui_head(f).argmax(1))
        assert 0 < int(model.user_groups.sum()) < data.n_users  # both groups used at initialisation
        model.ui_head[2].weight.zero_()  # all logits tie: argmax takes group 0 for everyone
        model.prepare_scoring()
        assert (model.user_groups == 0).all()
