"""SLMRec: every self-supervised task runs and gives a finite loss; the FAC chain follows the
modalities the dataset has."""
from __future__ import annotations

import pytest
import torch

from benchmark.config import build_config
from benchmark.data import from_triples, load_dataset
from benchmark.model import Batch
from benchmark.registry import get_model
from benchmark.trainer import seed_everything


def _batch(data, n: int = 64) -> Batch:  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(0)
    return Batch(torch.randint(0, data.n_users, (n,), generator=g),
                 torch.randint(0, data.n_items, (n,), generator=g),
                 torch.randint(0, data.n_items, (n,), generator=g))


@pytest.mark.parametrize("task", ["fac", "fd", "fm"])
def test_each_ssl_task_gives_finite_loss_and_gradients(task: str) -> None:
    data = load_dataset("synthetic-tiny")
    cls = get_model("slmrec")
    seed_everything(0)
    model = cls(data, build_config(cls.Config, {"ssl_task": task}))
    terms = model.loss(_batch(data))
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
    feats = {c: torch.randn(base.n_items, 8, generator=torch.Generator().manual_seed(i)).numpy()
             for i, c in enumerate(codes)}
    data = from_triples("mods", coo.row, coo.col, (torch.arange(coo.nnz) % 10 == 0).long().numpy()
                        + (torch.arange(coo.nnz) % 10 == 1).long().numpy() * 2,
                        base.n_users, base.n_items, feats)
    cls = get_model("slmrec")
    model = cls(data, build_config(cls.Config))
    steps = [m for m in ("v", "a", "t") if m in codes]
    assert model.describe()["fac_steps"] == ["id"] + steps
    if len(steps) > 1 and "t" in steps:
        assert model.fac_anchor["t"].out_features == 32
    terms = model.loss(_batch(data))
    assert torch.isfinite(terms["loss"])


def test_symmetric_spmm_gradient_matches_autograd() -> None:
    from benchmark.graphs import symmetric_spmm
    from benchmark.graphs import normalised_adjacency
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
