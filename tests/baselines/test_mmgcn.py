"""MMGCN specifics: the frozen-ID flag, the input widths per modality, the mean-aggregation graph."""

from __future__ import annotations

import numpy as np
import torch

from benchmark.config import build_config
from benchmark.data import from_triples, load_dataset
from benchmark.model import Batch
from benchmark.registry import get_model


def _model(data=None, **overrides):  # type: ignore[no-untyped-def]
    data = data or load_dataset("synthetic-tiny")
    cls = get_model("mmgcn")
    torch.manual_seed(0)
    return cls(data, build_config(cls.Config, overrides)), data


def _one_step(model, data) -> None:  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(1)
    batch = Batch(
        torch.randint(0, data.n_users, (64,), generator=g),
        torch.randint(0, data.n_items, (64,), generator=g),
        torch.randint(0, data.n_items, (64,), generator=g),
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    opt.zero_grad()
    model.loss(batch)["loss"].backward()
    opt.step()


def test_frozen_id_keeps_id_and_preferences_at_init() -> None:
    for frozen in (False, True):
        model, data = _model(frozen_id=frozen)
        before = {k: v.detach().clone() for k, v in model.named_parameters()}
        _one_step(model, data)
        after = dict(model.named_parameters())
        tables = ["id_embedding"] + [f"gcn.{m}.preference" for m in data.modalities]
        for k in tables:
            assert torch.equal(before[k], after[k]) == frozen, (k, frozen)
        # the layers train in both modes
        assert not torch.equal(before["gcn.v.lin.0.weight"], after["gcn.v.lin.0.weight"])
        assert model.describe()["frozen_id"] == frozen


def test_input_widths() -> None:
    rng = np.random.default_rng(0)
    u = np.repeat(np.arange(6), 3)
    i = np.tile(np.arange(3), 6) + np.repeat(np.arange(6) % 2, 3) * 3
    s = np.tile([0, 1, 2], 6)
    feats = {"v": rng.normal(size=(6, 100)), "t": rng.normal(size=(6, 300)), "a": rng.normal(size=(6, 128))}
    data = from_triples("widths", u, i, s, 6, 6, feats)
    model, _ = _model(data)
    # visual always through Linear(dim -> 256); others only when wider than 256
    assert model.describe()["input_dims"] == {"a": 128, "t": 256, "v": 256}
    assert model.gcn["a"].proj is None and model.gcn["a"].preference.shape == (6, 128)
    assert model.gcn["v"].proj.in_features == 100
    with torch.no_grad():
        model.eval()
        model.prepare_scoring()
        assert model.score(torch.arange(6)).shape == (6, 6)


def test_mean_aggregation_graph_both_directions() -> None:
    model, data = _model()
    adj = model.adj.a.to_dense()  # tiny graph: dense only inside this test
    n_u = data.n_users
    r = torch.from_numpy(data.train.toarray())
    assert torch.equal(adj[:n_u, n_u:] > 0, r > 0) and torch.equal(adj[n_u:, :n_u] > 0, r.T > 0)
    assert adj.diagonal().abs().sum() == 0
    rows = adj.sum(1)
    has = adj.ne(0).any(1)
    torch.testing.assert_close(rows[has], torch.ones(int(has.sum())))


# ----- same maths as the plain implementation ------------------------------------------------
def _reference_modality(gcn, adj, feats, ids):  # type: ignore[no-untyped-def]
    """The plain per-modality network: every layer on every node, F.normalize, concatenation."""
    import torch.nn.functional as F

    items = gcn.proj(feats) if gcn.proj is not None else feats
    x = F.normalize(torch.cat([gcn.preference, items]), dim=1)
    for w, lin, comb in zip(gcn.conv, gcn.lin, gcn.comb):
        h = F.leaky_relu(adj(x @ w))
        x_hat = F.leaky_relu(lin(x)) + ids
        x = F.leaky_relu(comb(torch.cat([h, x_hat], dim=1)))
    return x


def _reference_loss(model, batch):  # type: ignore[no-untyped-def]
    from benchmark import losses

    out = [
        _reference_modality(model.gcn[m], model.adj, getattr(model, f"feat_{m}"), model.id_embedding)
        for m in model.modalities
    ]
    z = torch.stack(out).mean(0)
    users, items = z[: model.n_users], z[model.n_users :]
    rank = losses.bpr_dot(users[batch.users], items[batch.pos], items[batch.neg])
    item_rows = model.n_users + torch.cat([batch.pos.reshape(-1), batch.neg.reshape(-1)])
    reg = losses.mean_sq(model.id_embedding[batch.users], model.id_embedding[item_rows])
    if "v" in model.gcn:
        reg = reg + losses.mean_sq(model.gcn["v"].preference)
    return rank + model.config.reg_weight * reg


def _grads(model, loss):  # type: ignore[no-untyped-def]
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.autograd.grad(loss, params, allow_unused=True)


def _assert_same_loss_and_grads(model, batch) -> None:  # type: ignore[no-untyped-def]
    new = model.loss(batch)["loss"]
    old = _reference_loss(model, batch)
    torch.testing.assert_close(new, old, atol=1e-5, rtol=1e-5)
    for g_new, g_old, (name, _) in zip(
        _grads(model, new), _grads(model, old), [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    ):
        assert g_new is not None and g_old is not None, name
        # gradients here are ~1e-4: compare on the scale of each gradient, not against an
        # absolute 1e-5 that every one of them would pass
        scale = g_old.abs().max().clamp_min(1e-30)
        torch.testing.assert_close(g_new / scale, g_old / scale, atol=1e-5, rtol=1e-5, msg=name)


def _batch(data, n: int = 64, n_neg: int = 0):  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(3)
    neg_shape = (n, n_neg) if n_neg else (n,)
    return Batch(
        torch.randint(0, data.n_users, (n,), generator=g),
        torch.randint(0, data.n_items, (n,), generator=g),
        torch.randint(0, data.n_items, neg_shape, generator=g),
    )


def test_loss_and_gradients_equal_the_plain_computation() -> None:
    model, data = _model(load_dataset("synthetic-tiny"), reg_weight=0.1)
    _assert_same_loss_and_grads(model, _batch(data))
    _assert_same_loss_and_grads(model, _batch(data, n_neg=3))  # several negatives per positive


def test_loss_and_gradients_equal_the_plain_computation_float32_and_variants() -> None:
    for cfg in ({}, {"n_layers": 1}, {"n_layers": 2, "frozen_id": True}):
        model, data = _model(load_dataset("synthetic-tiny"), **cfg)
        _assert_same_loss_and_grads(model, _batch(data))


def test_unit_rows_gradient_at_zero_rows() -> None:
    import torch.nn.functional as F

    from baselines.mmgcn import unit_rows_cat

    a = torch.randn(4, 5, dtype=torch.float64)
    a[1] = 0.0
    b = torch.randn(3, 5, dtype=torch.float64)
    a.requires_grad_(True)
    b.requires_grad_(True)
    w = torch.randn(7, 5, dtype=torch.float64)
    ga, gb = torch.autograd.grad((unit_rows_cat(a, b) * w).sum(), (a, b))
    ra, rb = torch.autograd.grad((F.normalize(torch.cat([a, b]), dim=1) * w).sum(), (a, b))
    torch.testing.assert_close(ga, ra)
    torch.testing.assert_close(gb, rb)
