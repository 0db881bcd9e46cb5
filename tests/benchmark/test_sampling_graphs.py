"""Negative sampling and the sparse graph builders."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from benchmark.data import load_dataset
from benchmark.graphs import (
    adjacency_operator,
    knn_graph,
    normalise,
    normalised_adjacency,
    propagate,
    sym_normalise_sparse,
)
from benchmark.sampling import interaction_keys, sample_negatives


def test_negatives_never_positive_and_uniformish() -> None:
    data = load_dataset("synthetic-tiny")
    keys = interaction_keys(data.train)
    users = np.repeat(np.arange(data.n_users), 50)
    neg = sample_negatives(users, keys, data.n_items, 2, np.random.default_rng(0))
    assert neg.shape == (len(users), 2)
    assert not data.train[np.repeat(users, 2), neg.ravel()].any()
    counts = np.bincount(neg.ravel(), minlength=data.n_items)
    assert counts.min() > 0


def test_symmetric_normalisation_by_hand() -> None:
    # path graph 0 - 1 - 2: degrees 1, 2, 1
    a = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], np.float32))
    n = normalise(a, "sym").toarray()
    s = 1 / np.sqrt(2)
    np.testing.assert_allclose(n, [[0, s, 0], [s, 0, s], [0, s, 0]], rtol=1e-6)
    t = torch.sparse_coo_tensor(torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]), torch.ones(4), (3, 3))
    np.testing.assert_allclose(sym_normalise_sparse(t).to_dense().numpy(), n, rtol=1e-6)
    r = normalise(a, "row").toarray()
    np.testing.assert_allclose(r, [[0, 1, 0], [0.5, 0, 0.5], [0, 1, 0]])


def test_bipartite_adjacency_shape_and_symmetry() -> None:
    data = load_dataset("synthetic-tiny")
    adj = normalised_adjacency(data.train).to_dense()
    n = data.n_users + data.n_items
    assert adj.shape == (n, n)
    assert torch.allclose(adj, adj.T)
    assert adj[: data.n_users, : data.n_users].abs().sum() == 0


def test_knn_blockwise_equals_dense_reference() -> None:
    x = torch.randn(57, 8, generator=torch.Generator().manual_seed(0))
    k = 5
    g = knn_graph(x, k, block=10).to_dense()
    xn = torch.nn.functional.normalize(x, dim=1)
    sim = xn @ xn.T
    v, c = sim.topk(k, dim=1)
    ref = torch.zeros_like(sim).scatter_(1, c, v)
    assert torch.allclose(g, ref, atol=1e-6)
    assert ((g != 0).sum(1) == k).all()


def _dense_layer_mean(a: torch.Tensor, x: torch.Tensor, n_layers: int) -> torch.Tensor:
    out, h = x, x
    for _ in range(n_layers):
        h = a @ h
        out = out + h
    return out / (n_layers + 1)


@pytest.mark.parametrize("kind", ["sym", "row"])
def test_layer_mean_operator_matches_dense_layers(kind: str) -> None:
    """`propagate` on a SparseOperator (Horner form, custom backward) equals the plain layer loop
    in value and in gradient, for a symmetric and a non-symmetric (row-normalised) graph."""
    data = load_dataset("synthetic-tiny")
    op = adjacency_operator(data.train, kind=kind, self_loops=kind == "row")
    dense = op.a.to_dense()
    x = torch.randn(dense.shape[0], 8, dtype=torch.float32, requires_grad=True)
    w = torch.randn(dense.shape[0], 8)
    ours = propagate(op, x, 3)
    ref = _dense_layer_mean(dense, x, 3)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)
    (g_ours,) = torch.autograd.grad((ours * w).sum(), x)
    (g_ref,) = torch.autograd.grad((ref * w).sum(), x)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-5, atol=1e-6)
