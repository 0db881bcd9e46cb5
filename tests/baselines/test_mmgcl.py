"""MMGCL: a view-1 graph drops the configured fraction of edges and holds training edges only."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from benchmark.config import build_config
from benchmark.data import load_dataset
from benchmark.graphs import bipartite, normalise
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
        assert ((r < u) != (c < u)).all()  # bipartite: never user-user or item-item
        assert train[users, items].all()  # every entry is a training edge...
        assert not held_out[users, items].any()  # ...so never a validation or test edge
        dense = a.to_dense()
        assert torch.allclose(dense, dense.T)
        seen.add(tuple(sorted(zip(r.tolist(), c.tolist()))))
    assert len(seen) == 5  # a fresh draw each call


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
        b = Batch(
            torch.randint(0, data.n_users, (64,), generator=g),
            torch.randint(0, data.n_items, (64,), generator=g),
            torch.randint(0, data.n_items, (64,), generator=g),
        )
        terms = model.loss(b)
        assert set(terms) == {"loss", "bpr", "ssl_user", "ssl_item"}
        assert all(torch.isfinite(v) for v in terms.values())
        terms["loss"].backward()
        assert all(model.dense[m].weight.grad is not None for m in data.modalities)


# ----- same maths as the plain implementation ------------------------------------------------
def _reference_loss(model, batch):  # type: ignore[no-untyped-def]
    """The plain MMGCL loss: a layer loop per propagation, torch's cross-entropy over the
    concatenated logits; the same random draws in the same order as the model."""
    import math

    import torch.nn.functional as F

    from benchmark import losses
    from benchmark.graphs import symmetric_spmm

    cfg = model.config

    def propagate(adj, items):  # type: ignore[no-untyped-def]
        h = torch.cat([model.user.weight, items])
        out = h
        for _ in range(cfg.n_layers):
            h = symmetric_spmm(adj, h)
            out = out + h
        out = out / (cfg.n_layers + 1)
        return out[: model.n_users], out[model.n_users :]

    def readout(us, its):  # type: ignore[no-untyped-def]
        return model.read_user(torch.cat(us, dim=1)), model.read_item(torch.cat(its, dim=1))

    def contrast(read, view1, view2, nodes):  # type: ignore[no-untyped-def]
        a = F.normalize(read(torch.cat([v[nodes] for v in view1], dim=1)), dim=1)
        parts2 = [v[nodes] for v in view2]
        p = F.normalize(read(torch.cat(parts2, dim=1)), dim=1)
        logits = [a @ p.T]
        n = len(nodes)
        if cfg.hard_negatives and n > 1:
            shift = int(torch.randint(1, n, (1,)))
            partner = torch.roll(torch.arange(n), shifts=shift)
            for b in range(1, len(parts2)):
                swapped = list(parts2)
                swapped[b] = parts2[b][partner]
                neg = F.normalize(read(torch.cat(swapped, dim=1)), dim=1)
                logits.append((a * neg).sum(1, keepdim=True))
        logits = torch.cat(logits, dim=1) / cfg.ssl_temp
        return F.cross_entropy(logits, torch.arange(n))

    adj = model.adj.a
    inputs = [model.item.weight] + [model.dense[m](getattr(model, f"feat_{m}")) for m in model.modalities]
    main = [propagate(adj, x) for x in inputs]
    users, items = readout([u for u, _ in main], [i for _, i in main])
    rank = losses.bpr_dot(users[batch.users], items[batch.pos], items[batch.neg])
    view1 = [propagate(model.edge_dropout_adjacency(), x) for x in inputs]
    m = 1 + int(torch.multinomial(model.mask_p, 1))
    n_i, d = inputs[m].shape
    bound = math.sqrt(6.0 / (n_i + d))
    noise = torch.empty_like(inputs[m]).uniform_(-bound, bound)
    view2 = list(main)
    view2[m] = propagate(adj, noise)
    u_nodes, i_nodes = torch.unique(batch.users), torch.unique(batch.pos)
    ssl = contrast(model.read_user, [u for u, _ in view1], [u for u, _ in view2], u_nodes) + contrast(
        model.read_item, [i for _, i in view1], [i for _, i in view2], i_nodes
    )
    return rank + cfg.ssl_alpha * ssl


def test_loss_and_gradients_equal_the_plain_computation() -> None:
    for hard in (True, False):
        data, model = _model(hard_negatives=hard, ssl_alpha=0.5, edge_drop=0.2)
        g = torch.Generator().manual_seed(5)
        b = Batch(
            torch.randint(0, data.n_users, (64,), generator=g),
            torch.randint(0, data.n_items, (64,), generator=g),
            torch.randint(0, data.n_items, (64,), generator=g),
        )
        params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        torch.manual_seed(11)  # the same dropped edges, masked modality, noise and partners
        new = model.loss(b)["loss"]
        torch.manual_seed(11)
        old = _reference_loss(model, b)
        torch.testing.assert_close(new, old, atol=1e-5, rtol=1e-5)
        g_new = torch.autograd.grad(new, [p for _, p in params])
        g_old = torch.autograd.grad(old, [p for _, p in params])
        # on the scale of the largest gradient: an absolute 1e-5 would pass any gradient here
        top = max(float(x.abs().max()) for x in g_old)
        for (name, _), x, y in zip(params, g_new, g_old):
            torch.testing.assert_close(x / top, y / top, atol=1e-5, rtol=1e-5, msg=name)
