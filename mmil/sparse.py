"""Ragged (per-user, variable-length) history sums as sparse products, for `model.MMIL.encode`.

A pass over B users with histories (idx, mask) of shape (B, L) is the sparse pattern

    S ∈ {0,1}^{B×N},  S_bj = 1  iff item row j is a real (unmasked) history position of row b

over the N rows of the step's item tables. Every history reduction of MMIL is a product with
that pattern carrying some values: the masked mean is ``(S / |S_b|) E``; the intent-attention
sums ``Σ_l a_blk E_{j_l}`` are ``S(a_k) E``. Done as CSR products, nothing of shape (B, L, d)
is ever gathered or padded (a TikTok batch has ~35 real items per 50 slots), and the backward
is two more sparse products instead of scatter-adds of (B, L, d) gradients:

    Y = S(v) X:   dX = S(v)^T dY,   dv_n = <dY_{b_n}, X_{j_n}>  (sampled dense-dense product)

This helper is generic; it could live in ``benchmark/graphs.py``.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor

# torch marks CSR as beta and warns once per process; the kernels used here are the stable ones
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")


class Pattern:
    """The nonzero pattern of a (n_rows, n_cols) sparse matrix, entries sorted by row, plus its
    transpose's ordering, so that products with any values on it run forward and backward."""

    def __init__(self, rows: Tensor, cols: Tensor, n_rows: int, n_cols: int, perm: Tensor | None = None) -> None:
        self.rows, self.cols, self.shape = rows, cols, (n_rows, n_cols)
        self.count = torch.bincount(rows, minlength=n_rows)
        self.crow = _offsets(self.count)
        # entry order of the transpose: by column, then row
        self.perm = torch.argsort(cols, stable=True) if perm is None else perm
        self.crow_t = _offsets(torch.bincount(cols, minlength=n_cols))
        self.col_t = rows[self.perm]
        self.source: Tensor | None = None  # set on a `repeat_rows` pattern

    @classmethod
    def from_mask(cls, idx: Tensor, mask: Tensor, n_cols: int) -> Pattern:
        """Row b holds the columns idx[b, l] where mask[b, l] (row-major order, as `nonzero`)."""
        rows, pos = mask.nonzero(as_tuple=True)
        return cls(rows, idx[rows, pos], mask.shape[0], n_cols)

    def repeat_rows(self, k: int) -> Pattern:
        """The pattern with every row b repeated k times as rows b*k .. b*k + k - 1, holding
        row b's entries; ``values (nnz, k)`` of this pattern go to it by `repeated_values`."""
        b, dev = self.rows, self.rows.device
        # entry (n, k') of the (nnz, k) layout sits at k*crow[b] + k'*count[b] + (n - crow[b])
        pos = (k * self.crow[b] + torch.arange(len(b), device=dev) - self.crow[b]).unsqueeze(1) + torch.arange(
            k, device=dev
        ) * self.count[b].unsqueeze(1)
        order = torch.empty(len(b) * k, dtype=torch.long, device=dev)
        order[pos.view(-1)] = torch.arange(len(b) * k, device=dev)
        rows = (b.unsqueeze(1) * k + torch.arange(k, device=dev)).view(-1)[order]
        cols = self.cols.unsqueeze(1).expand(-1, k).reshape(-1)[order]
        # the transpose's order follows from ours: by column, then row b, then k'
        out = Pattern(rows, cols, self.shape[0] * k, self.shape[1], perm=pos[self.perm].view(-1))
        out.source = order
        return out

    def repeated_values(self, values: Tensor) -> Tensor:
        """(nnz_base, k) values of the base pattern, in the entry order of this repeated one."""
        assert self.source is not None, "not a repeat_rows pattern"
        return values.reshape(-1)[self.source]

    def _repeat_order(self, k: int) -> Tensor:
        # entry (n, k') of the (nnz, k) layout goes to position k*crow[b] + k'*count[b] + offset(n)
        b = self.rows
        offset = torch.arange(len(b), device=b.device) - self.crow[b]
        pos = (k * self.crow[b] + offset).unsqueeze(1) + torch.arange(k, device=b.device) * self.count[b].unsqueeze(1)
        order = torch.empty(len(b) * k, dtype=torch.long, device=b.device)
        order[pos.view(-1)] = torch.arange(len(b) * k, device=b.device)
        return order

    def matmul(self, values: Tensor, x: Tensor) -> Tensor:
        """S(values) @ x, values (nnz,) in entry order, x (n_cols, D): (n_rows, D)."""
        dtype = _sparse_dtype(values, x)
        with torch.autocast(x.device.type, enabled=False):
            return _SparseMatmul.apply(values.to(dtype), x.to(dtype), self)

    def sampled(self, a: Tensor, b: Tensor) -> Tensor:
        """(a @ b^T) at the entries: <a_{row n}, b_{col n}> for every entry n; a (n_rows, D),
        b (n_cols, D) -> (nnz,)."""
        dtype = _sparse_dtype(a, b)
        with torch.autocast(a.device.type, enabled=False):
            return _Sampled.apply(a.to(dtype), b.to(dtype), self)

    def csr(self, values: Tensor) -> Tensor:
        return torch.sparse_csr_tensor(self.crow, self.cols, values, self.shape, check_invariants=False)

    def csr_t(self, values: Tensor) -> Tensor:
        return torch.sparse_csr_tensor(
            self.crow_t, self.col_t, values[self.perm], self.shape[::-1], check_invariants=False
        )


def _sparse_dtype(*xs: Tensor) -> torch.dtype:
    """The common dtype, float32 in place of a half type: CPU sparse products have no bfloat16
    kernel, so under bf16 autocast they run in float32 (as ``benchmark.graphs.fp32`` does)."""
    dtype = xs[0].dtype
    for x in xs[1:]:
        dtype = torch.promote_types(dtype, x.dtype)
    return torch.float32 if dtype in (torch.bfloat16, torch.float16) else dtype


def _offsets(count: Tensor) -> Tensor:
    out = torch.zeros(len(count) + 1, dtype=torch.long, device=count.device)
    out[1:] = count.cumsum(0)
    return out


class _SparseMatmul(torch.autograd.Function):
    """Y = S(v) X on a fixed pattern. dX = S(v)^T dY; dv = (dY X^T) sampled on the pattern."""

    @staticmethod
    def forward(ctx: Any, values: Tensor, x: Tensor, pattern: Pattern) -> Tensor:
        ctx.save_for_backward(values, x)
        ctx.pattern = pattern
        return pattern.csr(values) @ x

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        values, x = ctx.saved_tensors
        p: Pattern = ctx.pattern
        grad = grad.contiguous()
        d_values = d_x = None
        if ctx.needs_input_grad[0]:
            d_values = torch.sparse.sampled_addmm(p.csr(torch.zeros_like(values)), grad, x.T, beta=0.0).values()
        if ctx.needs_input_grad[1]:
            d_x = p.csr_t(values) @ grad
        return d_values, d_x, None


class _Sampled(torch.autograd.Function):
    """v_n = <a_{b_n}, b_{j_n}> on a fixed pattern. da = S(dv) b; db = S(dv)^T a."""

    @staticmethod
    def forward(ctx: Any, a: Tensor, b: Tensor, pattern: Pattern) -> Tensor:
        ctx.save_for_backward(a, b)
        ctx.pattern = pattern
        zeros = torch.zeros(len(pattern.cols), dtype=a.dtype, device=a.device)
        return torch.sparse.sampled_addmm(pattern.csr(zeros), a.contiguous(), b.T, beta=0.0).values()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        a, b = ctx.saved_tensors
        p: Pattern = ctx.pattern
        d_a = p.csr(grad) @ b if ctx.needs_input_grad[0] else None
        d_b = p.csr_t(grad) @ a if ctx.needs_input_grad[1] else None
        return d_a, d_b, None


# the smallest softmax denominator the shared-shift form accepts (its square must stay a normal
# float32 for the backward of 1/den); below it the exact per-row shift is used instead
MIN_DEN = 1e-15


class HistorySoftmax:
    """a_bjk = softmax over the entries j of row b of logits_jk, for a per-item logit table
    logits (N, K): the masked softmax over history positions, without padding or gathering.

    The softmax is unchanged by any shift constant within a row; shifting by the table's
    per-column max c_k makes ex_jk = exp(logits_jk - c_k) one table for every row, so

        den_bk = Σ_{j∈S_b} ex_jk = (S ex)_bk,   Σ_k coef_bk a_bjk = <coef_b / den_b, ex_j>

    are a sparse product and a sampled one. If a non-empty row's den falls below MIN_DEN (its
    logits all far below the table's max: only possible for attn_scale="dot" or a tiny
    attn_temp), every row gets the usual per-row max shift instead (`segment_softmax`).
    """

    def __init__(self, pattern: Pattern, logits: Tensor) -> None:
        self.pattern = pattern
        logits = logits.to(_sparse_dtype(logits))  # exp and the sums stay float32 under bf16 autocast
        ex = torch.exp(logits - logits.detach().amax(0))
        ones = torch.ones(len(pattern.cols), dtype=ex.dtype, device=ex.device)
        den = pattern.matmul(ones, ex)
        empty = (pattern.count == 0).unsqueeze(1)
        self.exact: Tensor | None = None
        if bool((den.detach() < MIN_DEN).logical_and_(~empty).any()):
            self.exact = segment_softmax(logits[pattern.cols], pattern)
        self.ex, self.den = ex, den.masked_fill(empty, 1.0)  # an empty row has no entry to weigh

    def weights(self) -> Tensor:
        """a (nnz, K) in entry order."""
        if self.exact is not None:
            return self.exact
        p = self.pattern
        return self.ex[p.cols] / self.den[p.rows]

    def contract(self, coef: Tensor) -> Tensor:
        """Σ_k coef_bk a_bjk per entry (b, j): (nnz,), coef (n_rows, K)."""
        if self.exact is not None:
            return (self.exact * coef[self.pattern.rows]).sum(1)
        return self.pattern.sampled(coef / self.den, self.ex)


def segment_softmax(logits: Tensor, pattern: Pattern) -> Tensor:
    """Softmax over each row's entries, per column of ``logits`` (nnz, K) (entry order): the
    masked softmax over history positions, without padding. Rows without entries have none."""
    rows = pattern.rows
    idx = rows.unsqueeze(1).expand_as(logits)
    # the per-row max is a constant of the softmax: it only keeps exp() in range
    top = torch.full((pattern.shape[0], logits.shape[1]), -torch.inf, dtype=logits.dtype, device=logits.device)
    top = top.scatter_reduce(0, idx, logits.detach(), "amax")
    ex = torch.exp(logits - top[rows])
    den = torch.zeros_like(top).index_add(0, rows, ex)
    return ex / den[rows]
