"""MMSSL: the generated graph, the discriminator kept out of the model's optimiser, its step, the
gradient penalty, the attention and determinism (the generic contract tests live in test_models.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from baselines.mmssl import Discriminator, gradient_penalty, masked_scores, topk_graphs
from benchmark.config import TrainConfig, build_config
from benchmark.data import load_dataset
from benchmark.registry import get_model
from benchmark.trainer import make_optimizer

from .batches import random_batch


@pytest.fixture(scope="module")
def data():  # type: ignore[no-untyped-def]
    return load_dataset("synthetic-tiny")


def make(data, **overrides):  # type: ignore[no-untyped-def]
    cls = get_model("mmssl")
    torch.manual_seed(0)
    return cls(data, build_config(cls.Config, overrides))


def test_generated_graph_by_hand() -> None:
    # 3 users x 4 items; user 0 trained on item 0, user 2 on item 3
    s = torch.tensor([[9.0, 1.0, 3.0, 2.0], [0.5, 4.0, -1.0, 3.0], [1.0, 2.0, 0.0, 8.0]])
    r = torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1.0]])
    scores = masked_scores(s, torch.eye(4), r)
    # masked rows [0,1,3,2], [.5,4,-1,3], [1,2,0,0]; L2 row norms
    assert torch.allclose(scores[0], torch.tensor([0.0, 1, 3, 2]) / 14**0.5)
    top = scores.topk(2, dim=1).indices.numpy()
    assert [sorted(t) for t in top.tolist()] == [[2, 3], [1, 3], [0, 1]]
    g_ui, g_iu = topk_graphs(top, 4)
    # every user has 2 ones -> 1/sqrt(2); item in-degrees: 0:1, 1:2, 2:1, 3:2
    h = 2**-0.5
    expected_ui = np.array([[0, 0, h, h], [0, h, 0, h], [h, h, 0, 0]], dtype=np.float32)
    assert np.allclose(g_ui.toarray(), expected_ui, atol=1e-6)
    expected_iu = np.array(
        [[0, 0, 1], [0, h, h], [1, 0, 0], [h, h, 0]],
        dtype=np.float32,
    )
    assert np.allclose(g_iu.toarray(), expected_iu, atol=1e-6)


def test_rebuild_matches_dense_topk(data) -> None:  # type: ignore[no-untyped-def]
    net = make(data, topk=3, graph_block=7)  # several blocks, the last one partial
    net.eval()
    net.start_epoch(1)
    assert bool((net.topk_v < 0).all())  # epoch 1: still the interaction graph
    net.start_epoch(2)
    with torch.no_grad():
        users, items = net.branches(dropout=False)
        r = torch.from_numpy(net.r.toarray())
        for k, m in enumerate(net.modalities):
            dense = (users[k] @ items[k].T) * (1 - r)
            expected = dense.topk(3, dim=1).values
            got = dense.gather(1, getattr(net, f"topk_{m}"))
            assert torch.allclose(got, expected, atol=1e-6)
            g_ui, _ = net.generated(m)
            assert g_ui.a._nnz() == data.n_users * 3


def test_discriminator_outside_the_models_optimiser(data) -> None:  # type: ignore[no-untyped-def]
    net = make(data)
    opt = make_optimizer(net, build_config(TrainConfig, get_model("mmssl").train_defaults))
    in_opt = {id(p) for g in opt.param_groups for p in g["params"]}
    d_params = list(net.adversary.parameters())
    assert d_params and not any(id(p) in in_opt for p in d_params)
    assert all(id(p) in in_opt for n, p in torch.nn.Module.named_parameters(net) if not n.startswith("adversary."))
    # D's weights and Adam moments are in the state dict (checkpoints carry them)
    keys = net.state_dict().keys()
    assert "adversary.net.0.weight" in keys and "adversary_opt.m0" in keys and "adversary_opt.step" in keys


def test_d_step_moves_d_not_the_model(data) -> None:  # type: ignore[no-untyped-def]
    net = make(data)
    net.train()
    model_before = {n: p.detach().clone() for n, p in net.named_parameters()}
    d_before = {n: p.detach().clone() for n, p in net.adversary.named_parameters()}
    fake = torch.rand(8, data.n_items)
    real = torch.rand(8, data.n_items)
    net.d_step(fake, real)
    assert all(torch.equal(p, model_before[n]) for n, p in net.named_parameters())
    assert all(not torch.equal(p, d_before[n]) for n, p in net.adversary.named_parameters())
    assert float(net.adversary_opt.step) == 1.0
    # and the model's own loss leaves no gradient on D
    net.loss(random_batch(data))["loss"].backward()
    assert all(p.grad is None for p in net.adversary.parameters())


def test_gradient_penalty_by_direct_computation() -> None:
    torch.manual_seed(0)
    d = Discriminator(16, 0.2, 0.0, 0.0).eval()  # eval: fixed BatchNorm statistics, no dropout
    real, fake = torch.rand(3, 16), torch.rand(3, 16)
    alpha = torch.tensor([[0.2], [0.5], [0.9]])
    gp = gradient_penalty(d, real, fake, alpha, 0.3)
    norms = []
    for n in range(3):
        x = (alpha[n] * real[n] + (1 - alpha[n]) * fake[n]).unsqueeze(0).requires_grad_(True)
        (g,) = torch.autograd.grad(d(x).sum(), x)
        norms.append(g.norm())
    expected = 0.3 * torch.stack([(v - 1) ** 2 for v in norms]).mean()
    assert torch.allclose(gp, expected, rtol=1e-5)


def test_attention_code_faithful_is_identity(data) -> None:  # type: ignore[no-untyped-def]
    views = torch.randn(2, 5, 64)
    faithful = make(data, code_faithful=True)
    blocks = faithful.w_cat.reshape(4, 64, 64).sum(0)
    assert torch.allclose(faithful.attention(views), views @ blocks, atol=1e-5)
    intent = make(data)
    q = (views @ intent.w_q).reshape(2, 5, 4, 16)
    k = (views @ intent.w_k).reshape(2, 5, 4, 16)
    n, h = 3, 1  # one node, one head by hand
    logits = torch.stack([torch.stack([q[a, n, h] @ k[b, n, h] / 4.0 for b in range(2)]) for a in range(2)])
    att = torch.softmax(logits, dim=1)
    z = intent.attention(views)
    head = (att @ views[:, n]) @ intent.w_cat[h * 64 : (h + 1) * 64]
    others = sum(
        (torch.softmax(torch.einsum("ae,be->ab", q[:, n, g], k[:, n, g]) / 4.0, 1) @ views[:, n])
        @ intent.w_cat[g * 64 : (g + 1) * 64]
        for g in range(4)
        if g != h
    )
    assert torch.allclose(z[:, n], head + others, atol=1e-5)


def test_same_seed_same_loss_and_d(data) -> None:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(2):
        net = make(data)
        net.train()
        torch.manual_seed(5)
        terms = net.loss(random_batch(data))
        out.append(
            (float(terms["loss"].detach()), float(terms["d_loss"]), net.adversary.net[0].weight.detach().clone())
        )
    assert out[0][0] == out[1][0] and out[0][1] == out[1][1]
    assert torch.equal(out[0][2], out[1][2])
