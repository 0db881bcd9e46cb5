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
    batch = Batch(torch.randint(0, data.n_users, (64,), generator=g),
                  torch.randint(0, data.n_items, (64,), generator=g),
                  torch.randint(0, data.n_items, (64,), generator=g))
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
