"""SLMRec: every self-supervised task runs and gives a finite loss; the FAC chain follows the
modalities the dataset has."""

from __future__ import annotations

import pytest
import torch

from benchmark.config import build_config
from benchmark.data import from_triples, load_dataset
from benchmark.registry import get_model
from benchmark.trainer import seed_everything

from .batches import random_batch


@pytest.mark.parametrize("task", ["fac", "fd", "fm"])
def test_each_ssl_task_gives_finite_loss_and_gradients(task: str) -> None:
    data = load_dataset("synthetic-tiny")
    cls = get_model("slmrec")
    seed_everything(0)
    model = cls(data, build_config(cls.Config, {"ssl_task": task}))
    terms = model.loss(random_batch(data, seed=0))
    assert set(terms) == {"loss", "infonce", "ssl"}
    assert all(torch.isfinite(v) for v in terms.values())
    assert terms["ssl"] > 0
    terms["loss"].backward()
    assert model.user.weight.grad is not None and torch.isfinite(model.user.weight.grad).all()
    for m in data.modalities:
        assert model.dense[m].weight.grad is not None


def test_unknown_ssl_task_is_refused() -> None:
    data = load_dataset("synthetic-tiny")
    cls = get_model("slmrec")
    with pytest.raises(ValueError, match="ssl_task"):
        cls(data, build_config(cls.Config, {"ssl_task": "FAC+"}))


@pytest.mark.parametrize("codes", [("v",), ("t",), ("a", "v"), ("a", "t", "v")])
def test_fac_chain_for_any_modalities(codes: tuple[str, ...]) -> None:
    base = load_dataset("synthetic-tiny")
    coo = base.train.tocoo()
    feats = {
        c: torch.randn(base.n_items, 8, generator=torch.Generator().manual_seed(i)).numpy() for i, c in enumerate(codes)
    }
    data = from_triples(
        "mods",
        coo.row,
        coo.col,
        (torch.arange(coo.nnz) % 10 == 0).long().numpy() + (torch.arange(coo.nnz) % 10 == 1).long().numpy() * 2,
        base.n_users,
        base.n_items,
        feats,
    )
    cls = get_model("slmrec")
    model = cls(data, build_config(cls.Config))
    steps = [m for m in ("v", "a", "t") if m in codes]
    assert model.describe()["fac_steps"] == ["id"] + steps
    if len(steps) > 1 and "t" in steps:
        assert model.fac_anchor["t"].out_features == 32
    terms = model.loss(random_batch(data, seed=0))
    assert torch.isfinite(terms["loss"])


def test_symmetric_spmm_gradient_matches_autograd() -> None:
    from benchmark.graphs import normalised_adjacency, symmetric_spmm

    data = load_dataset("synthetic-tiny")
    adj = normalised_adjacency(data.train)
    x = torch.randn(adj.shape[0], 4, requires_grad=True)
    w = torch.randn(adj.shape[0], 4)
    (symmetric_spmm(adj, symmetric_spmm(adj, x)) * w).sum().backward()
    g_fast = x.grad.clone()
    x.grad = None
    dense = adj.to_dense()
    (dense @ (dense @ x) * w).sum().backward()
    torch.testing.assert_close(g_fast, x.grad)


# ----- same maths as the plain implementation ------------------------------------------------
def _reference_loss(model, batch, task_seed: int = 7):  # type: ignore[no-untyped-def]
    """The plain SLMRec loss: a layer loop per branch, torch's InfoNCE and cross-entropy."""
    import torch.nn.functional as F

    from benchmark import losses
    from benchmark.graphs import symmetric_spmm

    cfg = model.config
    adj = model.adj.a

    def propagate(items, dropout=0.0):  # type: ignore[no-untyped-def]
        h = torch.cat([model.user.weight, items])
        out = h
        for _ in range(cfg.n_layers):
            h = symmetric_spmm(adj, h)
            if dropout > 0:
                h = F.dropout(h, dropout, model.training)
            out = out + h
        out = out / (cfg.n_layers + 1)
        return out[: model.n_users], out[model.n_users :]

    def branches(dropout=0.0, masked=None):  # type: ignore[no-untyped-def]
        inputs = [model.item.weight] + [model.dense[m](getattr(model, f"feat_{m}")) for m in model.modalities]
        if masked is not None:
            inputs[masked] = torch.zeros_like(inputs[masked])
        return [propagate(x, dropout) for x in inputs]

    def fuse(br):  # type: ignore[no-untyped-def]
        return (
            model.fuse_user(torch.cat([u for u, _ in br], dim=1)),
            model.fuse_item(torch.cat([i for _, i in br], dim=1)),
        )

    def two_views(users, items, view_a, view_b):  # type: ignore[no-untyped-def]
        ua, ia = fuse(branches(**view_a))
        ub, ib = fuse(branches(**view_b))
        return losses.info_nce(ua[users], ub[users], cfg.ssl_temp) + losses.info_nce(ia[items], ib[items], cfg.ssl_temp)

    torch.manual_seed(task_seed)
    br = branches()
    users, items = fuse(br)
    main = losses.info_nce(users[batch.users], items[batch.pos], cfg.temp)
    if cfg.ssl_task == "fac":
        t = cfg.ssl_temp
        labels = torch.arange(len(batch.pos))
        anchor = br[0][1][batch.pos]
        ssl = anchor.new_zeros(())
        for m in model.fac_steps:
            anchor = model.fac_anchor[m](anchor)
            target = model.fac_target[m](br[1 + model.modalities.index(m)][1][batch.pos])
            ssl = ssl + F.cross_entropy(anchor @ target.T / t, labels)
    elif cfg.ssl_task == "fd":
        ssl = two_views(batch.users, batch.pos, {"dropout": cfg.dropout}, {"dropout": cfg.dropout})
    else:
        a, b = torch.randperm(1 + len(model.modalities))[:2].tolist()
        ssl = two_views(batch.users, batch.pos, {"masked": a}, {"masked": b})
    return main + cfg.ssl_alpha * ssl


def _assert_same_loss_and_grads(model, batch) -> None:  # type: ignore[no-untyped-def]
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    torch.manual_seed(7)  # the same dropout masks / masked branches for both
    new = model.loss(batch)["loss"]
    old = _reference_loss(model, batch, task_seed=7)
    torch.testing.assert_close(new, old, atol=1e-5, rtol=1e-5)
    g_new = torch.autograd.grad(new, [p for _, p in params], allow_unused=True)
    g_old = torch.autograd.grad(old, [p for _, p in params], allow_unused=True)
    top = max(float(b.abs().max()) for b in g_old if b is not None)
    for (name, _), a, b in zip(params, g_new, g_old):
        assert (a is None) == (b is None), name
        if b is None:
            continue
        # on the scale of the largest gradient: an absolute 1e-5 would pass any gradient here
        # (all are < 0.2), and a per-tensor scale would compare float32 noise with noise where a
        # gradient is zero in exact arithmetic (the FAC target biases: shifting every target
        # changes no softmax)
        scale = top
        torch.testing.assert_close(a / scale, b / scale, atol=1e-5, rtol=1e-5, msg=name)


@pytest.mark.parametrize("task", ["fac", "fd", "fm"])
def test_loss_and_gradients_equal_the_plain_computation(task: str) -> None:
    data = load_dataset("synthetic-tiny")
    cls = get_model("slmrec")
    seed_everything(0)
    model = cls(data, build_config(cls.Config, {"ssl_task": task, "ssl_alpha": 0.5}))
    _assert_same_loss_and_grads(model, random_batch(data, seed=0))


def test_in_batch_ce_with_extra_logits_matches_cross_entropy() -> None:
    import torch.nn.functional as F

    from baselines.slmrec import in_batch_ce

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(9, 5, generator=g, dtype=torch.float64), torch.randn(9, 5, generator=g, dtype=torch.float64)
    e = torch.randn(9, 3, generator=g, dtype=torch.float64)
    for extra in (None, e):
        xs = [t.clone().requires_grad_(True) for t in (a, b, e)]
        ys = [t.clone().requires_grad_(True) for t in (a, b, e)]
        new = in_batch_ce(xs[0], xs[1], 0.3, xs[2] if extra is not None else None)
        logits = ys[0] @ ys[1].T / 0.3
        if extra is not None:
            logits = torch.cat([logits, ys[2]], dim=1)
        old = F.cross_entropy(logits, torch.arange(9))
        torch.testing.assert_close(new, old)
        n = 3 if extra is not None else 2
        for gx, gy in zip(torch.autograd.grad(new * 1.7, xs[:n]), torch.autograd.grad(old * 1.7, ys[:n])):
            torch.testing.assert_close(gx, gy)
