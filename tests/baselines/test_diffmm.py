"""DiffMM: the noise schedule and SNR weights by hand, the generated top-1 graph on a hand-made
denoiser output, keep-rate edge dropping, the denoisers outside the recommender's optimiser (and
inside its state dict, Adam state included), and determinism (the generic contract tests live in
test_models.py).

Schedule (defaults: scale 0.1, min 1e-4, max 0.02, 5 steps): var_t = linspace(1e-5, 2e-3, 5),
beta_t = 1 - (1 - var_t) / (1 - var_{t-1}) for t >= 1 telescopes, so with beta_0 fixed at 1e-4:
abar_t = 0.9999 (1 - var_t) / (1 - 1e-5) for t >= 1, abar_0 = 0.9999, SNR(0) = 9999.

Hand graph: 3 users, 4 items; denoiser output rows u0 [0, 1, 5, 2], u1 [0, 0, 1, 0.5],
u2 [9, 1, 2, 3]: top-1 items i2, i2, i0. Nodes u0 u1 u2 i0 i1 i2 i3 (0..6); degrees of A_m + I:
u 2, 2, 2; i0 2, i1 1, i2 3, i3 1. Entries: u0-i2 = u1-i2 = 1/sqrt(6), u2-i0 = 1/2 (both
directions); diagonal 1/2, 1/2, 1/2, 1/2, 1, 1/3, 1.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from baselines.diffmm import DiffMM, diffusion_schedule, drop_mask, generated_graph, snr_weights
from benchmark.config import TrainConfig, build_config
from benchmark.data import from_triples, load_dataset
from benchmark.model import Batch
from benchmark.trainer import make_optimizer, seed_everything


def tiny():  # type: ignore[no-untyped-def]
    users = np.array([0, 0, 1, 1, 2, 2, 0, 1, 2])
    items = np.array([0, 1, 1, 2, 0, 3, 3, 0, 1])
    split = np.array([0, 0, 0, 0, 0, 0, 1, 1, 2])
    feats = {"v": np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, -1.0]], dtype=np.float32)}
    return from_triples("tiny", users, items, split, 3, 4, feats)


def make(data, seed: int = 0, **overrides) -> DiffMM:  # type: ignore[no-untyped-def]
    seed_everything(seed)
    return DiffMM(data, build_config(DiffMM.Config, overrides))


def test_schedule_and_snr_weights_by_hand() -> None:
    var = [1e-5 + k * (2e-3 - 1e-5) / 4 for k in range(5)]
    abar = [0.9999] + [0.9999 * (1 - v) / (1 - 1e-5) for v in var[1:]]
    s = diffusion_schedule(5, 0.1, 1e-4, 0.02)
    np.testing.assert_allclose(s["abar"].numpy(), abar, rtol=1e-12)
    assert s["betas"][0] == 1e-4
    np.testing.assert_allclose(s["betas"][1].item(), 1 - (1 - var[1]) / (1 - var[0]), rtol=1e-12)
    snr = [a / (1 - a) for a in abar]
    assert snr[0] == pytest.approx(9999.0)
    w = snr_weights(s["abar"]).numpy()
    np.testing.assert_allclose(w, [1.0] + [snr[t - 1] - snr[t] for t in range(1, 5)], rtol=1e-9)
    assert 8000 < w[1] < 8500  # the ~8e3 weight of step 1
    # the last reverse step returns the denoiser's output alone
    assert s["c1"][0].item() == pytest.approx(1.0) and s["c2"][0].item() == 0.0
    model = make(tiny())
    np.testing.assert_allclose(model.snr_w.numpy(), w, rtol=1e-6)


HAND_OUT = torch.tensor([[0.0, 1.0, 5.0, 2.0], [0.0, 0.0, 1.0, 0.5], [9.0, 1.0, 2.0, 3.0]])


def hand_dense() -> torch.Tensor:
    r6 = 1 / math.sqrt(6)
    a = torch.diag(torch.tensor([0.5, 0.5, 0.5, 0.5, 1.0, 1 / 3, 1.0]))
    for u, i, v in ((0, 5, r6), (1, 5, r6), (2, 3, 0.5)):
        a[u, i] = a[i, u] = v
    return a


def test_rebuild_top1_graph_by_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    model = make(tiny(), keep_rate=1.0)
    monkeypatch.setattr(model, "denoise", lambda den, x0: HAND_OUT[: x0.shape[0]])
    model.rebuild()
    assert model.gen_items[0, :, 0].tolist() == [2, 2, 0]
    assert bool(model.gen_keep.all())
    g = generated_graph(model.gen_items[0], model.gen_keep[0], 3, 4, 1.0)
    # COO: the edges in both directions and the diagonal, nothing else
    expected = hand_dense()
    assert g.indices().shape[1] == 2 * 3 + 7
    torch.testing.assert_close(g.to_dense(), expected)
    torch.testing.assert_close(model.generated()[0].a.to_dense(), expected)


def test_keep_rate_drops_and_rescales() -> None:
    items = torch.tensor([[2], [2], [0]])
    full = generated_graph(items, torch.ones(13, dtype=torch.bool), 3, 4, 1.0).to_dense()
    keep = torch.zeros(13, dtype=torch.bool)
    keep[[0, 4, 6, 11]] = True  # u0->i2, i2->u1 (item->user block), diag u0, diag i2
    half = generated_graph(items, keep, 3, 4, 0.5)
    assert half.indices().shape[1] == 4
    mask = half.to_dense() != 0
    torch.testing.assert_close(half.to_dense()[mask], 2 * full[mask])
    assert mask[0, 5] and mask[5, 1] and mask[0, 0] and mask[5, 5]
    torch.manual_seed(0)
    m = drop_mask(200_000, 0.5, torch.device("cpu"))
    assert abs(m.float().mean().item() - 0.5) < 0.01
    assert bool(drop_mask(1000, 1.0, torch.device("cpu")).all())
    # one draw per rebuild: the model's graph has as many entries as kept, values / keep_rate
    model = make(tiny(), keep_rate=0.5)
    model.rebuild()
    ref = generated_graph(model.gen_items[0], torch.ones(13, dtype=torch.bool), 3, 4, 1.0).to_dense()
    got = model.generated()[0].a.to_dense()
    assert (got != 0).sum().item() == int(model.gen_keep[0].sum())
    torch.testing.assert_close(got[got != 0], 2 * ref[got != 0])


def test_denoisers_outside_the_optimiser_and_inside_the_state() -> None:
    data = load_dataset("synthetic-tiny")
    model = make(data)
    opt = make_optimizer(model, build_config(TrainConfig))
    in_opt = {id(p) for g in opt.param_groups for p in g["params"]}
    den = {id(p) for d in model.denoisers for p in d.parameters()}
    assert den and not den & in_opt
    everything = {id(p) for p in nn_parameters(model)}
    assert in_opt == everything - den
    keys = model.state_dict().keys()
    assert "denoisers.0.inp.weight" in keys and "denoisers.0.m_inp_weight" in keys
    assert "denoisers.1.adam_step" in keys and "gen_items" in keys and "gen_keep" in keys


def nn_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    # nn.Module's own listing, which DiffMM's override filters
    return [p for _, p in torch.nn.Module.named_parameters(model)]


def test_diffusion_phase_moves_denoisers_not_recommender() -> None:
    data = load_dataset("synthetic-tiny")
    model = make(data)
    rec = {k: v.detach().clone() for k, v in model.named_parameters()}
    den = {k: v.detach().clone() for k, v in model.denoisers.named_parameters()}
    model.train()
    losses = model.train_denoisers()
    assert set(losses) == set(data.modalities) and all(math.isfinite(v) for v in losses.values())
    for k, v in model.named_parameters():
        assert torch.equal(v, rec[k]), k
    for k, v in model.denoisers.named_parameters():
        assert not torch.equal(v, den[k]), k
        assert v.grad is None
    assert float(model.denoisers[0].adam_step) == math.ceil(data.n_users / 1024)
    assert model.denoisers[0].m_out_weight.abs().sum() > 0


def test_state_dict_round_trip_continues_the_diffusion_exactly() -> None:
    """What a resume does: the denoisers' weights and Adam moments come back from the state dict,
    so the next diffusion phase and graph equal the uninterrupted ones (fresh moments would not)."""
    data = load_dataset("synthetic-tiny")
    a = make(data, seed=3)
    a.train()
    a.start_epoch(1)
    b = make(data, seed=99)
    b.load_state_dict(a.state_dict())
    c = make(data, seed=99)
    state = {k: v for k, v in a.state_dict().items() if "m_" not in k.split(".")[-1]}
    c.load_state_dict(state, strict=False)  # the weights without the Adam moments
    torch.testing.assert_close(b.generated()[0].a.to_dense(), a.generated()[0].a.to_dense())
    for net in (a, b, c):
        torch.manual_seed(7)
        net.train()
        net.start_epoch(2)
    for (k, pa), (_, pb) in zip(a.denoisers.named_parameters(), b.denoisers.named_parameters(), strict=True):
        assert torch.equal(pa, pb), k
    assert torch.equal(a.gen_items, b.gen_items) and torch.equal(a.gen_keep, b.gen_keep)
    assert not torch.equal(a.denoisers[0].out.weight, c.denoisers[0].out.weight)


def test_same_seed_same_graph_and_loss() -> None:
    data = load_dataset("synthetic-tiny")
    batch = Batch(torch.tensor([0, 1, 2, 2]), torch.tensor([0, 1, 2, 3]), torch.tensor([4, 5, 6, 7]))
    out = []
    for seed in (1, 1, 2):
        model = make(data, seed=seed, cl_method=1, trans=1)
        model.train()
        model.start_epoch(1)
        out.append((model.gen_items.clone(), model.gen_keep.clone(), model.loss(batch)["loss"].item()))
    assert torch.equal(out[0][0], out[1][0]) and torch.equal(out[0][1], out[1][1])
    assert out[0][2] == out[1][2]
    assert out[0][2] != out[2][2]


def test_contrastive_pairs_follow_cl_method() -> None:
    data = load_dataset("synthetic-tiny")
    batch = Batch(torch.tensor([0, 1]), torch.tensor([0, 1]), torch.tensor([2, 3]))
    for method in (0, 1):
        model = make(data, cl_method=method)
        terms = model.loss(batch)
        assert terms["cl"].item() > 0
        torch.testing.assert_close(terms["loss"], terms["bpr"] + terms["reg"] + terms["cl"])
        reg = model.config.reg * (model.user.weight.pow(2).sum() + model.item.weight.pow(2).sum())
        torch.testing.assert_close(terms["reg"], reg)
