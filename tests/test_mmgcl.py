"""MMGCL: a view-1 graph drops the configured fraction of edges and holds training edges only."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from benchmark.config import build_config
from benchmark.data import load_dataset
from benchmark.graphs import normalise, bipartite
from benchmark.model import Batch
from benchmark.registry import get_model
from benchmark.trainer import seed_everything


def _model(**cfg):  # type: ignore[no-untyped-def]
    data = load_dataset("synthetic-tiny")
    cls = get_model("mmgcl")
    seed_everything(0)
    return data, cls(data, build_config(cls.Config, cfg))


def test_edge_dropout_fraction_and_training_edges_only() -> None:
    data, model = _model(edge_drop=0.3)
    e = data.train.nnz
    u = data.n_users
    train = data.train.toarray() > 0
    held_out = (data.valid + data.test).toarray() > 0
    seen = set()
    for _ in range(5):
        a = model.edge_dropout_adjacency().to_sparse_coo().coalesce()
        r, c = a.indices().numpy()
        # both directions of every kept edge; 30 % of the E undirected edges dropped
        assert len(r) == 2 * round(0.7 * e)
        assert (r < u).sum() == (c < u).sum() == round(0.7 * e)
        users, items = np.where(r < u, r, c), np.where(r < u, c, r) - u
        assert ((r < u) != (c < u)).all()               # bipartite: never user-user or item-item
        assert train[users, items].all()                # every entry is a training edge...
        assert not held_out[users, items].any()         # ...so never a validation or test edge
        dense = a.to_dense()
        assert torch.allclose(dense, dense.T)
        seen.add(tuple(sorted(zip(r.tolist(), c.tolist()))))
    assert len(seen) == 5                               # a fresh draw each call


def test_no_dropout_gives_the_normalised_training_graph() -> None:
    data, model = _model(edge_drop=0.0)
    ref = normalise(bipartite(data.train), "sym").toarray()
    np.testing.assert_allclose(model.edge_dropout_adjacency().to_dense().numpy(), ref, rtol=1e-6, atol=1e-7)


def test_dropped_graph_is_renormalised_by_kept_degrees() -> None:
    data, model = _model(edge_drop=0.5)
    a = model.edge_dropout_adjacency().to_dense().numpy()
    kept = sp.csr_matrix((a != 0).astype(np.float32))
    np.testing.assert_allclose(a, normalise(kept, "sym").toarray(), rtol=1e-5, atol=1e-7)


def test_loss_terms_finite_with_and_without_hard_negatives() -> None:
    for hard in (True, False):
        data, model = _model(hard_negatives=hard)
        g = torch.Generator().manual_seed(0)
        b = Batch(torch.randint(0, data.n_users, (64,), generator=g),
                  torch.randint(0, data.n_items, (64,), generator=g),
                  torch.randint(0, data.n_items, (64,), generator=g))
        terms = model.loss(b)
        assert set(terms) == {"loss", "bpr", "ssl_user", "ssl_item"}
        assert all(torch.isfinite(v) for v in terms.values())
        terms["loss"].backward()
        assert all(model.dense[m].weight.grad is not None for m in data.modalities)
