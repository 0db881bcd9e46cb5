"""LGMRec: the hyperedge assignments and the CGE worked out by hand, the whole forward pass and
the loss against a dense plain-torch reference of the fixed code, deterministic eval against
random training draws, the user MGE as a mean, L_HCL as a sum over the batch, and the one- and
three-modality cases (the generic contract tests live in test_models.py).

Hand example: 3 users, 3 items, d = 2, H = 2, tau = 0.5. Training pairs u0-{i0, i1},
u1-{i1, i2}, u2-{i0} (u2 has a valid and a test pair). Degrees u [2, 2, 1], i [2, 2, 1];
A_hat edge weights 1/sqrt(d_u d_i): u0-i0 = u0-i1 = u1-i1 = 1/2, u1-i2 = u2-i0 = 1/sqrt(2) = r.

Hyperedge logits and eval assignments softmax(logits / 0.5) (s(x) = 1 / (1 + e^-x)):
  visual x = i0 [1, 0], i1 [0, 1], i2 [1, 1];  V_v = identity: Lg_i = x
    items  i0 [s(2), s(-2)]   i1 [s(-2), s(2)]   i2 [1/2, 1/2]          s(2) = 0.88079708
    users  (sums) u0 [1, 1] -> [1/2, 1/2],  u1 [1, 2] -> [s(-2), s(2)],  u2 [1, 0] -> [s(2), s(-2)]
  text x = i0 1, i1 -2, i2 4;  V_t = [1, -1]: Lg_i = [x, -x]            s(4) = 0.98201379
    items  i0 [s(4), s(-4)]   i1 [s(-8), s(8)]   i2 [s(16), s(-16)]     s(8) = 0.99966465
    users  u0 [-1, 1] -> [s(-4), s(4)],  u1 [2, -2] -> [s(8), s(-8)],  u2 [1, -1] -> [s(4), s(-4)]
  (no text row of M_t is zero: F.normalize's gradient at a zero row is float noise times 1e12)
  (the pre-d918d5a code would have given the visual users the text rows and the text users their
  raw logits.)

CGE with one layer, E_u = [[1, 0], [0, 1], [1, 1]], E_i = [[1, -1], [2, 0], [0, 1]]:
  E^(1): u0 = (i0 + i1)/2 = [1.5, -0.5],  u1 = i1/2 + r i2 = [1, r],  u2 = r i0 = [r, -r]
         i0 = u0/2 + r u2 = [1/2 + r, r],  i1 = (u0 + u1)/2 = [1/2, 1/2],  i2 = r u1 = [0, r]
  CGE = (E^(0) + E^(1)) / 2 = u0 [1.25, -0.25], u1 [0.5, (1 + r)/2], u2 [(1 + r)/2, (1 - r)/2],
        i0 [(1.5 + r)/2, (r - 1)/2], i1 [1.25, 0.25], i2 [0, (1 + r)/2]
MGE input, W_v = [[1, 1], [0, 1]]: f_i = i0 [1, 1], i1 [0, 1], i2 [1, 2]; user means
  u0 [0.5, 1], u1 [0.5, 1.5], u2 [1, 1].
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from baselines.lgmrec import CountedLogSumExp, LGMRec, hcl_pairs
from benchmark.config import build_config
from benchmark.data import Dataset, from_triples, load_dataset
from benchmark.model import Batch

R = 1 / math.sqrt(2)
S2, S4, S8, S16 = (1 / (1 + math.exp(-x)) for x in (2.0, 4.0, 8.0, 16.0))

FEATURES = {
    "v": [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]],
    "t": [[1.0], [-2.0], [4.0]],
    "a": [[0.5, -1.0], [2.0, 0.0], [-1.0, 1.0]],
}
# (W_m, V_m) per modality
PARAMS = {
    "v": ([[1.0, 1.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]),
    "t": ([[1.0, 2.0]], [[1.0, -1.0]]),
    "a": ([[1.0, 0.0], [1.0, -1.0]], [[0.0, 1.0], [1.0, 0.5]]),
}
HAND = {"dim": 2, "n_ui_layers": 1, "n_mm_layers": 1, "n_hyper_layer": 1, "hyper_num": 2}
HAND |= {"alpha": 0.5, "tau": 0.5, "cl_weight": 0.1, "reg_weight": 0.01}


def hand_data(modalities: tuple[str, ...] = ("v", "t")) -> Dataset:
    u = np.array([0, 0, 1, 1, 2, 2, 2])
    i = np.array([0, 1, 1, 2, 0, 1, 2])
    s = np.array([0, 0, 0, 0, 0, 1, 2])
    feats = {m: np.array(FEATURES[m], np.float32) for m in modalities}
    return from_triples("lgmrec-hand", u, i, s, 3, 3, features=feats, source="test")


def hand_model(modalities: tuple[str, ...] = ("v", "t"), **overrides: object) -> LGMRec:
    torch.manual_seed(0)
    model = LGMRec(hand_data(modalities), build_config(LGMRec.Config, {**HAND, **overrides}))
    with torch.no_grad():
        model.user.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        model.item.weight.copy_(torch.tensor([[1.0, -1.0], [2.0, 0.0], [0.0, 1.0]]))
        for m in modalities:
            w, v = PARAMS[m]
            model.trs[m].copy_(torch.tensor(w))
            model.hyper[m].copy_(torch.tensor(v))
    return model.eval()


def dense_reference(model: LGMRec, data: Dataset) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(final (U+I) x d table, {m: G_m}) of the fixed reference code with deterministic
    assignments, in float64 with dense matrices (differentiable in the model's parameters)."""
    cfg = model.config
    r = torch.tensor(data.train.toarray(), dtype=torch.float64)
    n_u = r.shape[0]
    a = torch.zeros(sum(r.shape), sum(r.shape), dtype=torch.float64)
    a[:n_u, n_u:], a[n_u:, :n_u] = r, r.T
    deg = a.sum(1)
    dinv = torch.where(deg > 0, deg.pow(-0.5), torch.zeros_like(deg))
    a_hat = dinv[:, None] * a * dinv[None, :]
    layers = [torch.cat([model.user.weight, model.item.weight]).double()]
    for _ in range(cfg.n_ui_layers):
        layers.append(a_hat @ layers[-1])
    cge = torch.stack(layers).mean(0)

    def unit(x: torch.Tensor) -> torch.Tensor:
        return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)

    local, ghe = cge.clone(), {}
    for m in data.modalities:
        x = torch.tensor(data.features[m], dtype=torch.float64)
        f_i = x @ model.trs[m].double()
        f_u = (r @ f_i) / r.sum(1, keepdim=True).clamp_min(1.0)
        mm = torch.cat([f_u, f_i])
        for _ in range(cfg.n_mm_layers):
            mm = a_hat @ mm
        local = local + unit(mm)
        lg_i = x @ model.hyper[m].double()
        h_i, h_u = torch.softmax(lg_i / cfg.tau, 1), torch.softmax((r @ lg_i) / cfg.tau, 1)
        e_i = cge[n_u:]
        for _ in range(cfg.n_hyper_layer):
            z = h_i.T @ e_i
            e_i = h_i @ z
        ghe[m] = torch.cat([h_u @ z, e_i])
    return local + cfg.alpha * unit(sum(ghe.values())), ghe


def reference_hcl(g_a: torch.Tensor, g_b: torch.Tensor, rows: torch.Tensor, tau: float) -> torch.Tensor:
    """The reference's ssl_triple_loss: -sum log(exp(cos(a, b)/tau) / sum_all exp(cos(a, all)/tau))."""
    a, b, every = F.normalize(g_a[rows]), F.normalize(g_b[rows]), F.normalize(g_b)
    pos = torch.exp((a * b).sum(1) / tau)
    total = torch.exp(a @ every.T / tau).sum(1)
    return -torch.log(pos / total).sum()


def test_hyperedge_assignments_by_hand() -> None:
    model = hand_model()
    h_u, h_i = model.hyperedges("v")
    torch.testing.assert_close(h_i, torch.tensor([[S2, 1 - S2], [1 - S2, S2], [0.5, 0.5]]))
    torch.testing.assert_close(h_u, torch.tensor([[0.5, 0.5], [1 - S2, S2], [S2, 1 - S2]]))
    h_u, h_i = model.hyperedges("t")
    torch.testing.assert_close(h_i, torch.tensor([[S4, 1 - S4], [1 - S8, S8], [S16, 1 - S16]]))
    torch.testing.assert_close(h_u, torch.tensor([[1 - S4, S4], [S8, 1 - S8], [S4, 1 - S4]]))


def test_cge_and_user_mge_input_by_hand() -> None:
    model = hand_model(n_mm_layers=0)
    cge = model.branches()[0]
    want = [[1.25, -0.25], [0.5, (1 + R) / 2], [(1 + R) / 2, (1 - R) / 2]]
    want += [[(1.5 + R) / 2, (R - 1) / 2], [1.25, 0.25], [0, (1 + R) / 2]]
    torch.testing.assert_close(cge, torch.tensor(want))
    # with no MGE layer M_v is its input: the user rows are the means of their items' x W_v
    m_v = model.mge("v")
    torch.testing.assert_close(m_v, torch.tensor([[0.5, 1], [0.5, 1.5], [1, 1], [1, 1], [0, 1], [1, 2]]))


def test_user_mge_input_is_the_mean_of_the_users_items() -> None:
    data = load_dataset("synthetic-tiny")
    torch.manual_seed(0)
    model = LGMRec(data, build_config(LGMRec.Config, {"n_mm_layers": 0})).eval()
    for m in data.modalities:
        f_i = torch.tensor(np.array(data.features[m])) @ model.trs[m].detach()
        got = model.mge(m).detach()
        torch.testing.assert_close(got[data.n_users :], f_i)
        for u in range(data.n_users):
            items = torch.from_numpy(data.train.indices[data.train.indptr[u] : data.train.indptr[u + 1]].copy())
            want = f_i[items].mean(0) if len(items) else torch.zeros(f_i.shape[1])
            torch.testing.assert_close(got[u], want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("layers", [(1, 1, 1), (2, 2, 2), (1, 0, 3)], ids=["1-1-1", "2-2-2", "1-0-3"])
def test_forward_matches_the_dense_reference(layers: tuple[int, int, int]) -> None:
    n_ui, n_mm, n_hyper = layers
    model = hand_model(n_ui_layers=n_ui, n_mm_layers=n_mm, n_hyper_layer=n_hyper)
    with torch.no_grad():
        want, _ = dense_reference(model, hand_data())
        users, items = model.forward()
    torch.testing.assert_close(torch.cat([users, items]).double(), want, rtol=1e-5, atol=1e-6)


def hand_batch() -> Batch:
    return Batch(torch.tensor([0, 1, 1, 2, 0]), torch.tensor([1, 2, 1, 0, 0]), torch.tensor([2, 0, 0, 1, 2]))


def test_loss_terms_match_the_dense_reference() -> None:
    model, data = hand_model(), hand_data()
    final, ghe = dense_reference(model, data)
    b = hand_batch()
    n_u, tau = data.n_users, model.config.tau
    u, i, j = final[b.users], final[n_u + b.pos], final[n_u + b.neg]
    bpr = -F.logsigmoid((u * i).sum(1) - (u * j).sum(1)).mean()
    reg = (u.norm() + i.norm() + j.norm()) / len(b.users)
    g_v, g_t = ghe["v"], ghe["t"]  # anchor v against all t, as the reference
    hcl = reference_hcl(g_v[:n_u], g_t[:n_u], b.users, tau) + reference_hcl(g_v[n_u:], g_t[n_u:], b.pos, tau)
    terms = model.loss(b)
    for key, value in (("bpr", bpr), ("reg", 0.01 * reg), ("hcl", 0.1 * hcl)):
        torch.testing.assert_close(terms[key].double(), value, rtol=1e-5, atol=1e-7, msg=key)
    torch.testing.assert_close(terms["loss"], terms["bpr"] + terms["hcl"] + terms["reg"])
    assert hcl.item() > 1.0  # not a vanishing term: the test would not see a wrong pairing
    # and the gradients of every parameter (the InfoNCE's through `CountedLogSumExp`)
    params = list(model.parameters())
    want = torch.autograd.grad(bpr + 0.01 * reg + 0.1 * hcl, params)
    got = torch.autograd.grad(terms["loss"], params)
    for (name, _), g, w in zip(model.named_parameters(), got, want, strict=True):
        assert w.abs().max() > 0, name
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-6, msg=name)


def test_hcl_is_a_sum_over_the_batch() -> None:
    model, b = hand_model(), hand_batch()
    doubled = Batch(b.users.repeat(2), b.pos.repeat(2), b.neg.repeat(2))
    once, twice = model.loss(b), model.loss(doubled)
    torch.testing.assert_close(twice["hcl"], 2 * once["hcl"])
    torch.testing.assert_close(twice["bpr"], once["bpr"])  # BPR is a mean
    torch.testing.assert_close(twice["reg"], once["reg"] / math.sqrt(2))  # norms of repeated rows / 2B


def test_counted_logsumexp_equals_the_cross_entropy_over_every_row() -> None:
    """Denominators of the distinct anchors times their counts = the sum over the batch rows,
    values and gradients (float64; strips of 3 rows over 7 anchors)."""
    g = torch.Generator().manual_seed(0)
    q = F.normalize(torch.randn(7, 5, generator=g, dtype=torch.float64), dim=1).requires_grad_()
    t = F.normalize(torch.randn(11, 5, generator=g, dtype=torch.float64), dim=1).requires_grad_()
    counts = torch.tensor([1.0, 3.0, 2.0, 1.0, 1.0, 4.0, 1.0], dtype=torch.float64)
    got = CountedLogSumExp.apply(q, t, counts, 0.2, 3)
    rows = torch.repeat_interleave(torch.arange(7), counts.long())
    want = torch.logsumexp(q[rows] @ t.T / 0.2, dim=1).sum()
    torch.testing.assert_close(got, want)
    for a, b in zip(torch.autograd.grad(got, [q, t]), torch.autograd.grad(want, [q, t]), strict=True):
        torch.testing.assert_close(a, b)


@pytest.fixture(scope="module")
def tiny() -> Dataset:
    return load_dataset("synthetic-tiny")


def make(data: Dataset, **overrides: object) -> LGMRec:
    torch.manual_seed(0)
    return LGMRec(data, build_config(LGMRec.Config, overrides))


def scores(model: LGMRec, users: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        model.prepare_scoring()
        return model.score(users)


def test_eval_is_deterministic_and_training_draws_differ(tiny: Dataset) -> None:
    model, users = make(tiny), torch.arange(20)
    rng = torch.get_rng_state()
    first, second = scores(model, users), scores(model, users)
    assert torch.equal(first, second)
    assert torch.equal(torch.get_rng_state(), rng)  # eval draws nothing
    model.train()
    with torch.no_grad():
        a, b = model.forward()[0], model.forward()[0]
        h_u, h_i = model.hyperedges(tiny.modalities[0])
    assert not torch.allclose(a, b)
    # dropout in training: 1 - keep_rate of the entries zeroed, the kept ones scaled by 1/keep
    assert 0.3 < (h_i == 0).float().mean() < 0.7
    assert h_i.sum(1).max() > 1.0 + 1e-3
    # keep_rate 1: only the Gumbel noise differs, the rows still sum to 1
    model = make(tiny, keep_rate=1.0).train()
    with torch.no_grad():
        h1, h2 = model.hyperedges(tiny.modalities[0])[1], model.hyperedges(tiny.modalities[0])[1]
    assert not torch.allclose(h1, h2)
    torch.testing.assert_close(h1.sum(1), torch.ones(tiny.n_items))


def test_gumbel_at_eval_gives_the_references_random_scores(tiny: Dataset) -> None:
    users = torch.arange(20)
    model = make(tiny, gumbel_at_eval=True)
    assert not torch.equal(scores(model, users), scores(model, users))
    assert model.describe()["eval_assignments"].startswith("gumbel")


def test_one_modality_has_no_contrastive_term() -> None:
    model, data = hand_model(("t",)), hand_data(("t",))
    assert model.pairs == [] and model.describe()["hcl_pairs"] == []
    want, _ = dense_reference(model, data)
    torch.testing.assert_close(torch.cat(model.forward()).double(), want, rtol=1e-5, atol=1e-6)
    model.train()
    terms = model.loss(hand_batch())
    assert terms["hcl"].item() == 0.0
    terms["loss"].backward()
    assert model.trs["t"].grad is not None and model.trs["t"].grad.abs().sum() > 0
    assert model.hyper["t"].grad is not None and model.hyper["t"].grad.abs().sum() > 0


def test_modality_pairs() -> None:
    assert hcl_pairs(("t", "v")) == [("v", "t")]  # the reference: anchor image, all text
    assert hcl_pairs(("a", "v")) == [("v", "a")]  # TikTok
    assert hcl_pairs(("a", "t")) == [("t", "a")]
    assert hcl_pairs(("a", "t", "v")) == [("v", "t"), ("v", "a"), ("t", "a")]
    assert hcl_pairs(("t",)) == []


def test_three_modalities_sum_every_pair() -> None:
    mods = ("v", "t", "a")
    model, data = hand_model(mods), hand_data(mods)
    final, ghe = dense_reference(model, data)
    torch.testing.assert_close(torch.cat(model.forward()).double(), final, rtol=1e-5, atol=1e-6)
    b, n_u, tau = hand_batch(), data.n_users, model.config.tau
    want = sum(
        reference_hcl(ghe[x][:n_u], ghe[y][:n_u], b.users, tau) + reference_hcl(ghe[x][n_u:], ghe[y][n_u:], b.pos, tau)
        for x, y in hcl_pairs(mods)
    )
    torch.testing.assert_close(model.loss(b)["hcl"].double(), 0.1 * want, rtol=1e-5, atol=1e-7)


def test_several_negatives_and_config_checks(tiny: Dataset) -> None:
    model = make(tiny).train()
    b = Batch(torch.tensor([0, 1, 2]), torch.tensor([0, 1, 2]), torch.tensor([[3, 4], [5, 6], [7, 8]]))
    terms = model.loss(b)
    assert all(torch.isfinite(v) for v in terms.values())
    for bad in ({"keep_rate": 0.0}, {"n_hyper_layer": 0}, {"hyper_num": 0}, {"tau": 0.0}):
        with pytest.raises(ValueError, match="lgmrec"):
            make(tiny, **bad)
