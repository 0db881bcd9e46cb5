"""The all-items InfoNCE of MICRO and HCGCN (`AllItemsLogSumExp`: loss and gradient in two strip
sweeps) and the refresh batch's graph product (`ValueSpmm`) against the computations they
replaced, kept here verbatim as the reference: 4096-row chunks of ``log(sum refl + sum between -
self) - pos`` under activation checkpointing, and ``torch.sparse.mm``, gradients by autograd.
Same weights, same batch: the loss and every parameter gradient must agree to 1e-5."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

import baselines.hcgcn
import baselines.micro
from baselines._item_graphs import AllItemsLogSumExp, ValueSpmm, chunked_contrastive, spmm
from benchmark.config import build_config
from benchmark.data import load_dataset
from benchmark.graphs import SparseOperator
from benchmark.model import Batch
from benchmark.registry import get_model

TOL = {"rtol": 1e-5, "atol": 1e-5}


# ---- the old computation (baselines/_item_graphs.py before the strip pass), unchanged ----


def _old_contrast_chunk(a: Tensor, b: Tensor, start: int, size: int, tau: float) -> Tensor:
    q = a[start : start + size] / tau
    refl = torch.exp(q @ a.T).sum(1)
    between = torch.exp(q @ b.T).sum(1)
    pos = (q * b[start : start + size]).sum(1)
    self_sim = torch.exp((q * a[start : start + size]).sum(1))
    return (torch.log(refl + between - self_sim) - pos).sum()


def old_chunked_contrastive(
    anchor: Tensor, view: Tensor, tau: float, chunk: int = 4096, use_checkpoint: bool = True
) -> Tensor:
    a, b = F.normalize(anchor, dim=1), F.normalize(view, dim=1)
    n = a.shape[0]
    ckpt = use_checkpoint and torch.is_grad_enabled() and (a.requires_grad or b.requires_grad)
    total = a.new_zeros(())
    for s in range(0, n, chunk):
        if ckpt:
            total = total + checkpoint(
                _old_contrast_chunk, a, b, s, chunk, tau, use_reentrant=False, preserve_rng_state=False
            )
        else:
            total = total + _old_contrast_chunk(a, b, s, chunk, tau)
    return total / n


def old_spmm(a: SparseOperator | Tensor, x: Tensor) -> Tensor:
    return a(x) if isinstance(a, SparseOperator) else torch.sparse.mm(a, x)


# ---- the functions alone ----


@pytest.mark.parametrize("rows", [1, 5, 16, 50, 64, 4096])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_strip_infonce_matches_old_chunked_checkpointed(rows: int, dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    z = torch.randn(50, 8, dtype=dtype, requires_grad=True)
    h = torch.randn(50, 8, dtype=dtype, requires_grad=True)
    for tau in (0.5, 0.2):
        ref = old_chunked_contrastive(z, h, tau, chunk=16)
        g_ref = torch.autograd.grad(3.0 * ref, (z, h))  # an upstream gradient other than 1
        got = chunked_contrastive(z, h, tau, rows=rows)
        g_got = torch.autograd.grad(3.0 * got, (z, h))
        torch.testing.assert_close(got, ref, **TOL)
        for x, y in zip(g_got, g_ref):
            torch.testing.assert_close(x, y, **TOL)


def test_strip_infonce_gradient_to_one_input_and_without_grad() -> None:
    torch.manual_seed(1)
    z = torch.randn(30, 6, dtype=torch.float64, requires_grad=True)
    h = torch.randn(30, 6, dtype=torch.float64)  # a view that takes no gradient
    (g_ref,) = torch.autograd.grad(old_chunked_contrastive(z, h, 0.5), (z,))
    (g_got,) = torch.autograd.grad(chunked_contrastive(z, h, 0.5, rows=7), (z,))
    torch.testing.assert_close(g_got, g_ref, **TOL)
    with torch.no_grad():
        torch.testing.assert_close(chunked_contrastive(z, h, 0.5, rows=7), old_chunked_contrastive(z, h, 0.5), **TOL)
    a, b = F.normalize(z.detach(), dim=1), F.normalize(h, dim=1)
    assert not AllItemsLogSumExp.apply(a, b, 0.5, 7).requires_grad


def test_strip_infonce_passes_gradcheck() -> None:
    torch.manual_seed(2)
    a = F.normalize(torch.randn(9, 4, dtype=torch.float64), dim=1).requires_grad_()
    b = F.normalize(torch.randn(9, 4, dtype=torch.float64), dim=1).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, y: AllItemsLogSumExp.apply(x, y, 0.5, 4), (a, b))


def test_value_spmm_matches_torch_sparse_mm() -> None:
    torch.manual_seed(4)
    n_rows, n_cols = 40, 30
    idx = torch.stack([torch.randint(0, n_rows, (200,)), torch.randint(0, n_cols, (200,))])
    pattern = torch.sparse_coo_tensor(idx, torch.rand(200), (n_rows, n_cols)).coalesce()
    x = torch.randn(n_cols, 5, dtype=torch.float64, requires_grad=True)
    up = torch.randn(n_rows, 5, dtype=torch.float64)
    results = []
    for fn in (old_spmm, spmm):
        v = pattern.values().double().requires_grad_()
        a = torch.sparse_coo_tensor(pattern.indices(), 2.0 * v, pattern.shape).coalesce()
        y = fn(a, x)
        results.append((y, *torch.autograd.grad((y * up).sum(), (v, x))))
    for got, ref in zip(results[1], results[0]):
        torch.testing.assert_close(got, ref, **TOL)
    ValueSpmm.EDGE_BLOCK, old_block = 7, ValueSpmm.EDGE_BLOCK  # several edge blocks
    try:
        v = pattern.values().double().requires_grad_()
        a = torch.sparse_coo_tensor(pattern.indices(), v, pattern.shape).coalesce()
        (g,) = torch.autograd.grad((spmm(a, x) * up).sum(), (v,))
        torch.testing.assert_close(g, 0.5 * results[0][1], **TOL)
    finally:
        ValueSpmm.EDGE_BLOCK = old_block


# ---- MICRO and HCGCN: whole loss, every parameter gradient ----


@pytest.fixture(scope="module")
def data():  # type: ignore[no-untyped-def]
    return load_dataset("synthetic-tiny")


def _batches(data, n: int = 64) -> list[Batch]:  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(3)
    return [
        Batch(
            torch.randint(0, data.n_users, (n,), generator=g),
            torch.randint(0, data.n_items, (n,), generator=g),
            torch.randint(0, data.n_items, (n,), generator=g),
        )
        for _ in range(2)
    ]


def _loss_and_grads(model, batch: Batch, refresh: bool) -> tuple[dict[str, Tensor], dict[str, Tensor]]:  # type: ignore[no-untyped-def]
    if refresh:
        model.start_epoch(1)  # the learned graphs (and HCGCN's clusters) rebuilt, with gradient
    model.zero_grad(set_to_none=True)
    out = model.loss(batch)
    out["loss"].backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return {k: v.detach() for k, v in out.items()}, grads


@pytest.mark.parametrize("name,module", [("micro", baselines.micro), ("hcgcn", baselines.hcgcn)])
def test_model_loss_and_gradients_match_old_infonce(name: str, module, data, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    cls = get_model(name)
    torch.manual_seed(0)
    model = cls(data, build_config(cls.Config, {"contrast_chunk": 16}))
    model.train()
    with torch.no_grad():  # trained-looking weights, not the symmetric initial ones
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    for k, batch in enumerate(_batches(data)):  # the refresh batch, then one on the stored graphs
        new_out, new_grads = _loss_and_grads(model, batch, refresh=k == 0)
        with monkeypatch.context() as m:
            m.setattr(
                module, "chunked_contrastive", lambda h, v, tau, rows: old_chunked_contrastive(h, v, tau, chunk=4096)
            )
            m.setattr(module, "spmm", old_spmm)
            old_out, old_grads = _loss_and_grads(model, batch, refresh=k == 0)
        assert new_out.keys() == old_out.keys()
        for key in new_out:
            torch.testing.assert_close(new_out[key], old_out[key], **TOL)
        assert new_grads.keys() == old_grads.keys()
        assert any(n.startswith("feats.") for n in new_grads) == (k == 0)  # the graph's gradient
        for key in new_grads:
            torch.testing.assert_close(new_grads[key], old_grads[key], **TOL, msg=lambda s, k=key: f"{k}: {s}")
            # all these gradients are 1e-7..1e-3, so an absolute 1e-5 alone would pass a wrong one:
            # also compare each relative to its own largest entry. 1e-4 there, not 1e-5: the
            # attention bias's gradient is a sum of cancelling terms with float32 noise ~2e-5 of it
            scale = old_grads[key].abs().max()
            torch.testing.assert_close(
                new_grads[key] / scale,
                old_grads[key] / scale,
                rtol=1e-4,
                atol=1e-4,
                msg=lambda s, k=key: f"{k} (scaled): {s}",
            )
        assert (new_out["contrast" if name == "micro" else "modality"] > 0).all()
