"""GRCN specifics: one non-negative weight per directed edge, the routing direction flag, and
the attention / routing maths against a plain per-node computation."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmark.config import build_config
from benchmark.data import load_dataset
from benchmark.model import Batch
from benchmark.registry import get_model


def _model(**overrides):  # type: ignore[no-untyped-def]
    data = load_dataset("synthetic-tiny")
    cls = get_model("grcn")
    torch.manual_seed(0)
    return cls(data, build_config(cls.Config, overrides)), data


def test_edge_weights_one_per_directed_edge() -> None:
    model, data = _model()
    with torch.no_grad():
        w = model.edge_weights()
    assert w.shape == (2 * data.train.nnz,)
    assert (w >= 0).all() and (w > 0).any()
    unpruned, _ = _model(pruning=False)
    with torch.no_grad():
        assert (unpruned.edge_weights() < 0).any()


def test_routing_moves_preferences_only_in_default_mode() -> None:
    for bug in (False, True):
        model, _ = _model(routing_reference_bug=bug)
        with torch.no_grad():
            for m in model.modalities:
                p, _ = model.route(m)
                init = F.normalize(model.preference[m], dim=1)
                assert torch.allclose(p, init) == bug, (m, bug)
                torch.testing.assert_close(p.norm(dim=1), torch.ones(model.n_users))


def test_routing_and_attention_match_a_per_node_computation() -> None:
    model, data = _model(n_routing=1)
    m = model.modalities[0]
    with torch.no_grad():
        p, c = model.route(m)
        rep, alpha = model.refine(m)
        p0 = F.normalize(model.preference[m], dim=1)
        for u in range(5):
            items = torch.from_numpy(data.train[u].indices.astype("int64"))
            b = torch.softmax(c[items] @ p0[u], 0)
            torch.testing.assert_close(p[u], F.normalize(p0[u] + b @ c[items], dim=0))
            # u's content representation: its items attend to it over their incoming edges
            a = torch.softmax(c[items] @ p[u], 0)
            torch.testing.assert_close(rep[u], p[u] + a @ c[items])
        # the affinities of each node's incoming edges sum to one
        n = model.n_users + model.n_items
        sums = torch.zeros(n).index_add_(0, model.dst, alpha)
        has = torch.zeros(n, dtype=torch.bool)
        has[model.dst] = True
        torch.testing.assert_close(sums[has], torch.ones(int(has.sum())))


def test_loss_reaches_every_table() -> None:
    model, data = _model()
    g = torch.Generator().manual_seed(1)
    batch = Batch(torch.randint(0, data.n_users, (64,), generator=g),
                  torch.randint(0, data.n_items, (64,), generator=g),
                  torch.randint(0, data.n_items, (64,), generator=g))
    model.loss(batch)["loss"].backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
