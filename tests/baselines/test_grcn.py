"""GRCN specifics: one non-negative weight per directed edge, the routing direction flag, and
the attention / routing maths against a plain per-node computation."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from benchmark import losses
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
    batch = Batch(
        torch.randint(0, data.n_users, (64,), generator=g),
        torch.randint(0, data.n_items, (64,), generator=g),
        torch.randint(0, data.n_items, (64,), generator=g),
    )
    model.loss(batch)["loss"].backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


# ----- the edge-list implementation this model had before its sparse products (issue #14) -----
def _ref_segment_softmax(logits: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
    e = logits.exp()
    return e / torch.zeros(n).index_add_(0, index, e).index_select(0, index)


def _ref_sum_at(messages: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
    return messages.new_zeros(n, messages.shape[1]).index_add_(0, index, messages)


def _ref_tables(model, data) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[no-untyped-def]
    """The old forward(): gather both endpoints of every edge, multiply, ``index_add_``."""
    coo = sp.coo_matrix(data.train)
    eu, ei = torch.from_numpy(coo.row.astype(np.int64)), torch.from_numpy(coo.col.astype(np.int64))
    n_u, n_i = model.n_users, model.n_items
    src, dst = torch.cat([eu, n_u + ei]), torch.cat([n_u + ei, eu])
    reps, alphas = [], []
    for m in model.modalities:
        c = F.normalize(F.leaky_relu(model.content[m](getattr(model, f"feat_{m}"))), dim=1)
        p = F.normalize(model.preference[m], dim=1)
        c_e = c.index_select(0, ei)
        if not model.config.routing_reference_bug:
            for _ in range(model.config.n_routing):
                b = _ref_segment_softmax((p.index_select(0, eu) * c_e).sum(1), eu, n_u)
                p = F.normalize(p + _ref_sum_at(b.unsqueeze(1) * c_e, eu, n_u), dim=1)
        p_e = p.index_select(0, eu)
        s = (p_e * c_e).sum(1)
        a_item, a_user = _ref_segment_softmax(s, ei, n_i), _ref_segment_softmax(s, eu, n_u)
        reps.append(
            torch.cat(
                [
                    p + _ref_sum_at(a_user.unsqueeze(1) * c_e, eu, n_u),
                    c + _ref_sum_at(a_item.unsqueeze(1) * p_e, ei, n_i),
                ]
            )
        )
        alphas.append(torch.cat([a_item, a_user]))
    w = (torch.stack(alphas, dim=1) * model.confidence.index_select(0, src)).amax(dim=1)
    w = F.relu(w) if model.config.pruning else w

    def aggregate(x: torch.Tensor) -> torch.Tensor:
        return _ref_sum_at(w.unsqueeze(1) * x.index_select(0, src), dst, n_u + n_i)

    x0 = F.normalize(model.id_embedding, dim=1)
    x1 = aggregate(x0)
    z = torch.cat([x0 + x1 + aggregate(x1), *reps], dim=1)
    return z[:n_u], z[n_u:]


def _ref_loss(model, data, batch: Batch) -> torch.Tensor:  # type: ignore[no-untyped-def]
    users, items = _ref_tables(model, data)
    u, i, j = users[batch.users], items[batch.pos], items[batch.neg]
    rank = losses.bpr_dot(u, i, j)
    item_rows = model.n_users + torch.cat([batch.pos.reshape(-1), batch.neg.reshape(-1)])
    reg = losses.mean_sq(
        model.id_embedding[batch.users],
        model.id_embedding[item_rows],
        *(model.preference[m][batch.users] for m in model.modalities),
    )
    return rank + model.config.reg_weight * reg


@pytest.mark.parametrize(
    "overrides",
    [{}, {"routing_reference_bug": True}, {"pruning": False}],
    ids=["default", "reference_bug", "no_pruning"],
)
@pytest.mark.parametrize("n_neg", [1, 3])
def test_sparse_products_match_the_edge_list_reference(overrides: dict, n_neg: int) -> None:
    """Loss, scoring tables and every parameter gradient of the CSR / SDDMM implementation equal
    those of the old gather-multiply-index_add one, from the same weights and batch."""
    model, data = _model(**overrides)
    with torch.no_grad():  # non-trivial confidences of both signs, so pruning and max both act
        model.confidence.normal_(0.0, 1.0, generator=torch.Generator().manual_seed(2))
    g = torch.Generator().manual_seed(3)
    neg_shape = (96,) if n_neg == 1 else (96, n_neg)
    batch = Batch(
        torch.randint(0, data.n_users, (96,), generator=g),
        torch.randint(0, data.n_items, (96,), generator=g),
        torch.randint(0, data.n_items, neg_shape, generator=g),
    )
    params = [p for _, p in model.named_parameters()]
    new = model.loss(batch)["loss"]
    new_grads = torch.autograd.grad(new, params)
    old = _ref_loss(model, data, batch)
    old_grads = torch.autograd.grad(old, params)
    torch.testing.assert_close(new, old, atol=1e-5, rtol=1e-5)
    for (name, _), a, b in zip(model.named_parameters(), new_grads, old_grads):
        assert b.abs().sum() > 0, name
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5, msg=lambda m, n=name: f"{n}: {m}")
        # the gradients are 1e-2 at most, so the plain check is loose: again at the tensor's scale
        scale = b.abs().max()
        torch.testing.assert_close(
            a / scale, b / scale, atol=1e-5, rtol=1e-5, msg=lambda m, n=name: f"{n} (scaled): {m}"
        )
    with torch.no_grad():
        for a, b in zip(model.forward(), _ref_tables(model, data)):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
