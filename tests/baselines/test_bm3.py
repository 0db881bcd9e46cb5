"""BM3: its loss on a hand-made graph worked out by hand, against a dense plain-torch reference
(values and gradients), negatives ignored, no dropout at scoring, fixed raw tables.

Hand example (`test_loss_by_hand`): 3 users, 2 items, d = 2, L = 1, dropout 0, cl_weight 2,
reg_weight 0.1. Training pairs (u0, i0), (u0, i1), (u1, i1); u2 has a validation and a test pair
only, so it is an isolated node. Degrees u0 2, u1 1, u2 0, i0 1, i1 2; A_hat edge weights 1/sqrt(d_u d_i):

    u0-i0 = 1/sqrt(2) = 0.70710678,   u0-i1 = 1/2,   u1-i1 = 1/sqrt(2) = 0.70710678

Ego rows: u0 = [1, 2], u1 = [3, -1], u2 = [0, 2], i0 = [2, -1], i1 = [0, 1].

    E^(1): u0 = 0.70710678 i0 + 0.5 i1 = [1.41421356, -0.20710678]
           u1 = 0.70710678 i1          = [0, 0.70710678]
           u2 = [0, 0]
           i0 = 0.70710678 u0          = [0.70710678, 1.41421356]
           i1 = 0.5 u0 + 0.70710678 u1 = [0.5, 1] + [2.12132034, -0.70710678] = [2.62132034, 0.29289322]
    H_u = (E^(0) + E^(1)) / 2:  u0 = [1.20710678, 0.89644661], u1 = [1.5, -0.14644661], u2 = [0, 1]
    H_i = (E^(0) + E^(1)) / 2 + E^(0):
           i0 = [1.35355339, 0.20710678] + [2, -1] = [3.35355339, -0.79289322]
           i1 = [1.31066017, 0.64644661] + [0, 1]  = [1.31066017, 1.64644661]

Predictor P(x) = [[1, 1], [0, 1]] x + [0, 0.5] = [x0 + x1, x1 + 0.5]:
    P(H_u0) = [2.10355339, 1.39644661]   P(H_u1) = [1.35355339, 0.35355339]
    P(H_i0) = [2.56066017, -0.29289322]  P(H_i1) = [2.95710678, 2.14644661]
Modalities: v (2-d) x_i0 = [1, 0], x_i1 = [1, 1], Lin_v = identity: h^v = x^v,
    P(h^v_i0) = [1, 0.5], P(h^v_i1) = [2, 1.5];
t (1-d) x_i0 = 2, x_i1 = -1, Lin_t(x) = [x, -x] + [0, 1]: h^t_i0 = [2, -1], h^t_i1 = [-1, 2],
    P(h^t_i0) = [1, -0.5] (parallel to h^t_i0: cos 1), P(h^t_i1) = [1, 2.5].

Batch (u, i) = (u0, i0), (u1, i1), (u0, i1); with dropout 0 the targets are the H rows themselves:
    cos(P h_u, h_i)    = 0.68352069, 0.80031805, 0.95159400
    cos(P h_i, h_u)    = 0.72987213, 0.74837040, 0.99994057      L_rec   = 0.36212805
    cos(P h^v, h_i)    = 0.76752970, 0.96767210, 0.96767210
    cos(P h^t, h_i)    = 0.97332853, 0.95772078, 0.95772078      L_align = 0.13611867
    cos(P h^v, h^v)    = 0.89442719, 0.98994949, 0.98994949
    cos(P h^t, h^t)    = 1,          0.66436384, 0.66436384      L_mask  = 0.26564871
    EmbLoss = (||H_u||_F + ||H_i||_F) / I = (2.35205653 + 4.03777371) / 2 = 3.19491512
              (divided by the 2 items, not the 3 users)
    L = 0.36212805 + 2 (0.13611867 + 0.26564871) + 0.1 * 3.19491512 = 1.48515432
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from baselines.bm3 import BM3, dropped_rows
from benchmark.config import TrainConfig, build_config
from benchmark.data import Dataset, from_triples, load_dataset
from benchmark.model import Batch
from benchmark.trainer import make_optimizer

R2 = 1 / math.sqrt(2)


def hand_data() -> Dataset:
    u = np.array([0, 0, 1, 2, 2])
    i = np.array([0, 1, 1, 0, 1])
    s = np.array([0, 0, 0, 1, 2])
    feats = {"v": np.array([[1.0, 0.0], [1.0, 1.0]], np.float32), "t": np.array([[2.0], [-1.0]], np.float32)}
    return from_triples("bm3-hand", u, i, s, 3, 2, features=feats, source="test")


def hand_model() -> BM3:
    cfg = build_config(BM3.Config, {"dim": 2, "n_layers": 1, "dropout": 0.0, "reg_weight": 0.1, "cl_weight": 2.0})
    model = BM3(hand_data(), cfg)
    with torch.no_grad():
        model.user.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, -1.0], [0.0, 2.0]]))
        model.item.weight.copy_(torch.tensor([[2.0, -1.0], [0.0, 1.0]]))
        model.predictor.weight.copy_(torch.tensor([[1.0, 1.0], [0.0, 1.0]]))
        model.predictor.bias.copy_(torch.tensor([0.0, 0.5]))
        model.feats.trs["v"].weight.copy_(torch.eye(2))
        model.feats.trs["v"].bias.zero_()
        model.feats.trs["t"].weight.copy_(torch.tensor([[1.0], [-1.0]]))
        model.feats.trs["t"].bias.copy_(torch.tensor([0.0, 1.0]))
    return model.train()


def cos_rows(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))


def test_loss_by_hand() -> None:
    model = hand_model()
    # the tables of the docstring, by hand
    h_u = torch.tensor([[(1 + 2 * R2) / 2, (2 - R2 + 0.5) / 2], [1.5, (-1 + R2) / 2], [0.0, 1.0]])
    h_i = torch.tensor([[(2 + R2) / 2 + 2, (-1 + 2 * R2) / 2 - 1], [(0.5 + 3 * R2) / 2, (1 + 1 - R2) / 2 + 1]])
    users, items = model.embeddings()
    torch.testing.assert_close(users, h_u)
    torch.testing.assert_close(items, h_i)

    def pred(x: torch.Tensor) -> torch.Tensor:
        return torch.stack([x[:, 0] + x[:, 1], x[:, 1] + 0.5], dim=1)

    h_v = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    h_t = torch.tensor([[2.0, -1.0], [-1.0, 2.0]])
    u, i = torch.tensor([0, 1, 0]), torch.tensor([0, 1, 1])
    rec = (1 - cos_rows(pred(h_u)[u], h_i[i]).mean()) + (1 - cos_rows(pred(h_i)[i], h_u[u]).mean())
    align = sum(1 - cos_rows(pred(h)[i], h_i[i]).mean() for h in (h_v, h_t))
    mask = sum(1 - cos_rows(pred(h)[i], h[i]).mean() for h in (h_v, h_t))
    emb = (h_u.norm() + h_i.norm()) / 2  # / I = 2, not U = 3 (MMRec's EmbLoss divides by its last table)
    terms = model.loss(Batch(u, i, torch.tensor([1, 0, 0])))
    torch.testing.assert_close(terms["rec"], rec)
    torch.testing.assert_close(terms["align"], 2.0 * align)
    torch.testing.assert_close(terms["mask"], 2.0 * mask)
    torch.testing.assert_close(terms["reg"], 0.1 * emb)
    # the docstring's figures
    assert float(rec) == pytest.approx(0.36212805, abs=1e-6)
    assert float(align) == pytest.approx(0.13611867, abs=1e-6)
    assert float(mask) == pytest.approx(0.26564871, abs=1e-6)
    assert float(emb) == pytest.approx(3.19491512, abs=1e-6)
    assert terms["loss"].item() == pytest.approx(1.48515432, abs=1e-5)


# ---- a dense plain-torch reference of the code, on synthetic-tiny ----


@pytest.fixture(scope="module")
def data() -> Dataset:
    return load_dataset("synthetic-tiny")


def make(data: Dataset, **overrides: object) -> BM3:
    torch.manual_seed(0)
    return BM3(data, build_config(BM3.Config, overrides)).train()


def batch(data: Dataset, n: int = 96, seed: int = 1) -> Batch:
    g = torch.Generator().manual_seed(seed)
    # few rows drawn from small ranges: users and items repeat within the batch
    return Batch(
        torch.randint(0, 40, (n,), generator=g),
        torch.randint(0, 30, (n,), generator=g),
        torch.randint(0, data.n_items, (n,), generator=g),
    )


def dense_reference(model: BM3, data: Dataset, b: Batch) -> dict[str, torch.Tensor]:
    """The reference's loss with dropout 0: dense D^-1/2 A D^-1/2, the predictor and the
    projectors over every row, then the batch rows."""
    r = torch.tensor(data.train.toarray())
    n_u, n_i = r.shape
    a = torch.zeros(n_u + n_i, n_u + n_i)
    a[:n_u, n_u:], a[n_u:, :n_u] = r, r.T
    deg = a.sum(1)
    d = torch.where(deg > 0, deg.pow(-0.5), torch.zeros_like(deg))
    a_hat = d[:, None] * a * d[None, :]
    e = torch.cat([model.user.weight, model.item.weight])
    layers, x = [e], e
    for _ in range(model.config.n_layers):
        x = a_hat @ x
        layers.append(x)
    mean = torch.stack(layers).mean(0)
    h_u, h_i = mean[:n_u], mean[n_u:] + model.item.weight
    p = model.predictor
    t_u, t_i = h_u.detach()[b.users], h_i.detach()[b.pos]

    def c(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return 1 - F.cosine_similarity(x, y, dim=-1).mean()

    rec = c(p(h_u)[b.users], t_i) + c(p(h_i)[b.pos], t_u)
    align = mask = torch.zeros(())
    for m in model.modalities:
        h_m = model.feats.trs[m](model.feats.table(m))
        o_m = p(h_m)[b.pos]
        align = align + c(o_m, t_i)
        mask = mask + c(o_m, h_m.detach()[b.pos])
    cfg = model.config
    reg = cfg.reg_weight * (h_u.norm() + h_i.norm()) / n_i
    total = rec + cfg.cl_weight * (align + mask) + reg
    return {"loss": total, "rec": rec, "align": cfg.cl_weight * align, "mask": cfg.cl_weight * mask, "reg": reg}


def test_loss_and_gradients_match_the_dense_reference(data: Dataset) -> None:
    model = make(data, dropout=0.0, n_layers=2)
    b = batch(data)
    assert len(b.users.unique()) < len(b.users) and len(b.pos.unique()) < len(b.pos)
    terms = model.loss(b)
    terms["loss"].backward()
    grads = {k: v.grad.clone() for k, v in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    ref = dense_reference(model, data, b)
    ref["loss"].backward()
    for k in ref:
        torch.testing.assert_close(terms[k], ref[k], rtol=1e-5, atol=1e-6)
    for k, v in model.named_parameters():
        torch.testing.assert_close(grads[k], v.grad, rtol=1e-4, atol=1e-7, msg=k)
    # the raw tables learn through the batch's items only
    for m in model.modalities:
        touched = grads[f"feats.raw.{m}"].abs().sum(1) > 0
        assert set(touched.nonzero().ravel().tolist()) <= set(b.pos.tolist())


def test_negatives_do_not_change_the_loss(data: Dataset) -> None:
    model = make(data)  # dropout 0.5: the same seed gives the same masks
    b = batch(data)
    terms = []
    for neg in (b.neg, torch.zeros_like(b.neg), torch.randint(0, data.n_items, (len(b.users), 3))):
        torch.manual_seed(7)
        terms.append(model.loss(Batch(b.users, b.pos, neg)))
    for t in terms[1:]:
        assert t.keys() == terms[0].keys()
        for k in t:
            assert torch.equal(t[k], terms[0][k]), k


def test_target_dropout_in_training_only(data: Dataset) -> None:
    model = make(data)
    b = batch(data)
    first, second = model.loss(b), model.loss(b)
    for k in ("rec", "align", "mask"):  # fresh masks on every target view
        assert not torch.equal(first[k], second[k]), k
    assert torch.equal(first["reg"], second["reg"])
    model.eval()
    a, c = model.loss(b), model.loss(b)
    assert torch.equal(a["loss"], c["loss"])
    with torch.no_grad():
        torch.testing.assert_close(a["loss"], dense_reference(model, data, b)["loss"], rtol=1e-5, atol=1e-6)


def test_repeated_rows_share_one_mask() -> None:
    torch.manual_seed(0)
    rows = torch.ones(4, 300)
    inverse = torch.tensor([0, 1, 0, 2, 3, 1])
    t = dropped_rows(rows, inverse, 0.5, True)
    assert t.shape == (6, 300) and not t.requires_grad
    assert set(t.unique().tolist()) == {0.0, 2.0}  # rescaled by 1 / (1 - p)
    assert torch.equal(t[0], t[2]) and torch.equal(t[1], t[5]) and not torch.equal(t[0], t[1])
    assert torch.equal(dropped_rows(rows, inverse, 0.5, False), rows[inverse])


def test_scores_at_eval_have_no_dropout(data: Dataset) -> None:
    model = make(data)
    model.loss(batch(data))["loss"].backward()
    model.eval()
    users = torch.arange(10)
    with torch.no_grad():
        first = model.score(users)  # computed afresh
        model.prepare_scoring()
        second = model.score(users)  # from the cache
        third = model.score(users)
        h_u, h_i = model.embeddings()
        expected = model.predictor(h_u)[users] @ model.predictor(h_i).T
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    assert torch.equal(second, third)
    torch.testing.assert_close(second, expected)


def test_fixed_raw_features_are_not_parameters(data: Dataset) -> None:
    fixed = make(data, train_raw_features=False)
    tuned = make(data)
    names = {k for k, _ in fixed.named_parameters()}
    assert not any(k.startswith("feats.raw") for k in names)
    assert {f"feats.raw.{m}" for m in tuned.modalities} <= {k for k, _ in tuned.named_parameters()}
    n_raw = sum(data.features[m].size for m in data.modalities)
    count = lambda mdl: sum(p.numel() for p in mdl.parameters())  # noqa: E731
    assert count(tuned) - count(fixed) == n_raw
    # one optimiser step leaves the fixed tables as they were, and moves the tuned ones
    before = {m: fixed.feats.table(m).clone() for m in fixed.modalities}
    for model in (fixed, tuned):
        opt = make_optimizer(model, build_config(TrainConfig, BM3.train_defaults))
        model.loss(batch(data))["loss"].backward()
        opt.step()
    for m in fixed.modalities:
        assert torch.equal(fixed.feats.table(m), before[m])
        assert not torch.equal(tuned.feats.table(m), before[m])


def test_config_and_description(data: Dataset) -> None:
    model = make(data)
    assert model.describe() == {"modalities": list(data.modalities), "train_raw_features": True}
    assert BM3.train_defaults == {"lr": 1e-3, "batch_size": 2048}
    cfg = BM3.Config()
    assert (cfg.dim, cfg.n_layers, cfg.dropout, cfg.reg_weight, cfg.cl_weight) == (64, 1, 0.5, 0.1, 2.0)
    assert all(BM3.grid[k][0] == getattr(cfg, k, BM3.train_defaults.get(k)) for k in BM3.grid)
    with pytest.raises(ValueError, match="dropout"):
        BM3(data, build_config(BM3.Config, {"dropout": 1.0}))
