"""Products on a fixed sparsity pattern whose values are computed (and differentiated) per step.

For a pattern S (n_rows x n_cols, nnz entries (r_k, c_k) in CSR order) and values v (nnz,):

    SDDMM   sddmm(a, b)_k   = <a_{r_k}, b_{c_k}>                      (nnz,)
    SpMM    spmm(v, x)      = S(v) @ x                                (n_rows x d)
            spmm_t(v, x)    = S(v)^T @ x                              (n_cols x d)

with the gradients, for an upstream G of the output:

    sddmm:  dL/da = S(G) @ b,         dL/db = S(G)^T @ a
    spmm:   dL/dx = S(v)^T @ G,       dL/dv = sddmm(G, x)

and two compositions with their backward in closed form (`_Attend`: a row-softmax attention
with a residual; `_PowerSum`: K propagations summed, on a square pattern).

Every one of them is a CSR product (``addmm``) or a sampled product (``sampled_addmm``) on the
pattern or on its transpose, which is built once and kept beside it with the permutation of the
values: gathering both endpoints of every edge, multiplying and ``index_add_``-ing nnz x d tensors
(what autograd does for the edge-list form) cost 3-4x more per product on the TikTok graph. The
values (nnz scalars) stay ordinary autograd tensors, so softmaxes and maxima over edges compose
with these products.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn

from benchmark.graphs import sparse_forward

# torch calls its CSR support beta; mm and sampled_addmm are the stable operations
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")

# (crow, col, n_rows, n_cols) of one CSR side; the other side's values are v[perm]
_Side = tuple[Tensor, Tensor, int, int]


def _csr(side: _Side, values: Tensor) -> Tensor:
    crow, col, n_rows, n_cols = side
    return torch.sparse_csr_tensor(crow, col, values, (n_rows, n_cols), check_invariants=False)


def _mm(side: _Side, values: Tensor, x: Tensor, add: Tensor | None = None) -> Tensor:
    """S(values) @ x, plus ``add`` when given (one pass). Without it, ``addmm`` with ``beta=0``
    ignores its input (NaN included), so the output is not zero-filled as in ``torch.sparse.mm``."""
    if add is not None:
        return torch.sparse.addmm(add, _csr(side, values), x)
    out = x.new_empty(side[2], x.shape[1])
    return torch.addmm(out, _csr(side, values), x, beta=0.0, out=out)


def _sampled(side: _Side, a: Tensor, b: Tensor) -> Tensor:
    """<a_r, b_c> for every entry (r, c) of ``side``, in its CSR order. (``sampled_addmm`` does
    propagate NaN from its input's values under ``beta=0``: they must be zeros.)"""
    zero = a.new_zeros(side[1].shape[0])
    return torch.sparse.sampled_addmm(_csr(side, zero), a, b.t(), beta=0.0).values()


class _SDDMM(torch.autograd.Function):
    """out_k = <a_{r_k}, b_{c_k}> on the pattern ``side``; ``side_t``/``perm`` is its transpose."""

    @staticmethod
    @sparse_forward
    def forward(
        ctx,
        a: Tensor,
        b: Tensor,
        side: _Side,
        side_t: _Side,  # type: ignore[override]
        perm: Tensor,
    ) -> Tensor:
        ctx.side, ctx.side_t, ctx.perm = side, side_t, perm
        ctx.save_for_backward(a, b)
        return _sampled(side, a, b)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        a, b = ctx.saved_tensors
        grad_a = _mm(ctx.side, grad, b) if ctx.needs_input_grad[0] else None
        grad_b = _mm(ctx.side_t, grad.index_select(0, ctx.perm), a) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b, None, None, None


class _SpMM(torch.autograd.Function):
    """base + S(v) @ x on the pattern ``side`` (base optional, added in the same pass);
    ``side_t``/``perm`` is its transpose. dL/dbase = G."""

    @staticmethod
    @sparse_forward
    def forward(
        ctx,
        v: Tensor,
        x: Tensor,
        base: Tensor | None,
        side: _Side,  # type: ignore[override]
        side_t: _Side,
        perm: Tensor,
    ) -> Tensor:
        ctx.side, ctx.side_t, ctx.perm = side, side_t, perm
        ctx.save_for_backward(v, x)
        return _mm(side, v, x, add=base)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        v, x = ctx.saved_tensors
        grad_v = _sampled(ctx.side, grad, x) if ctx.needs_input_grad[0] else None
        grad_x = _mm(ctx.side_t, v.index_select(0, ctx.perm), grad) if ctx.needs_input_grad[1] else None
        return grad_v, grad_x, grad if ctx.needs_input_grad[2] else None, None, None, None


class _PowerSum(torch.autograd.Function):
    """h = sum_{k=0..K} S(v)^k x on a square pattern, with the backward in closed form:
    with x_k = S(v) x_{k-1} and g_K = G, g_k = G + S(v)^T g_{k+1} (k < K):
    dL/dx = g_0,  dL/dv = sum_{k=1..K} sddmm(g_k, x_{k-1}).
    Autograd over the K products also works; this saves its intermediate sums and copies."""

    @staticmethod
    @sparse_forward
    def forward(
        ctx,
        v: Tensor,
        x: Tensor,
        k: int,
        side: _Side,
        side_t: _Side,  # type: ignore[override]
        perm: Tensor,
    ) -> Tensor:
        xs = [x]
        for _ in range(k):
            xs.append(_mm(side, v, xs[-1]))
        ctx.side, ctx.side_t, ctx.perm = side, side_t, perm
        ctx.save_for_backward(v, *xs[:-1])
        h = xs[0].clone()
        for xk in xs[1:]:
            h += xk
        return h

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        v, *xs = ctx.saved_tensors
        v_t = v.index_select(0, ctx.perm)
        g, grad_v = grad, None
        for x_prev in reversed(xs):  # g = g_k, paired with x_{k-1}
            if ctx.needs_input_grad[0]:
                term = _sampled(ctx.side, g, x_prev)
                grad_v = term if grad_v is None else grad_v.add_(term)
            g = _mm(ctx.side_t, v_t, g, add=grad)
        return grad_v, g, None, None, None, None


class _Attend(torch.autograd.Function):
    """y = a + S(b) x with b = softmax within each row of sddmm(a, x) (attention of each row r
    over its entries' columns, plus a residual), the backward in closed form: with
    t = sddmm(G, x) (dL/db) and t' = b * (t - sum_{row} b t) (dL/ds),
    dL/da = G + S(t') x,   dL/dx = S(t')^T a + S(b)^T G.
    Autograd over the same pieces also works; this saves its scalar chain and two additions."""

    @staticmethod
    @sparse_forward
    def forward(
        ctx,
        a: Tensor,
        x: Tensor,
        side: _Side,
        side_t: _Side,  # type: ignore[override]
        perm: Tensor,
        row: Tensor,
    ) -> Tensor:
        b = _group_softmax(_sampled(side, a, x), row, side[2])
        ctx.side, ctx.side_t, ctx.perm, ctx.row = side, side_t, perm, row
        ctx.save_for_backward(a, x, b)
        return _mm(side, b, x, add=a)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        a, x, b = ctx.saved_tensors
        side, side_t, perm = ctx.side, ctx.side_t, ctx.perm
        bt = b * _sampled(side, grad, x)
        ts = bt - b * bt.new_zeros(side[2]).index_add_(0, ctx.row, bt).index_select(0, ctx.row)
        grad_a = _mm(side, ts, x, add=grad) if ctx.needs_input_grad[0] else None
        grad_x = None
        if ctx.needs_input_grad[1]:
            grad_x = _mm(side_t, ts.index_select(0, perm), a, add=_mm(side_t, b.index_select(0, perm), grad))
        return grad_a, grad_x, None, None, None, None


class EdgePattern(nn.Module):
    """The fixed pattern of a sparse (n_rows x n_cols) matrix, entries in CSR order (row-major,
    columns sorted), with its transpose: the products of the module docstring on it.

    ``row``/``col`` give each entry's endpoints (int64; the CSR's own ``crow``/``indices`` are
    int32); values passed in are in this order. Buffers are
    not persistent (data, not state) and move with ``.to(device)``.
    """

    def __init__(self, m: sp.spmatrix) -> None:
        super().__init__()
        m = sp.csr_matrix(m, dtype=np.float32)
        m.sort_indices()
        self.n_rows, self.n_cols = m.shape
        # the transpose's entry j is entry perm[j] of this matrix (and inverse[k] the other way)
        t = sp.csr_matrix((np.arange(m.nnz, dtype=np.float64), m.indices, m.indptr), shape=m.shape).T.tocsr()
        t.sort_indices()
        perm = t.data.astype(np.int64)
        inverse = np.empty_like(perm)
        inverse[perm] = np.arange(m.nnz)
        # int32 CSR indices: torch's CPU products take a faster path with them (about 1.3x)
        crow = torch.from_numpy(m.indptr.astype(np.int32))
        for name, value in (
            ("crow", crow),
            ("indices", torch.from_numpy(m.indices.astype(np.int32))),
            ("row", torch.repeat_interleave(torch.arange(self.n_rows), crow.diff().long())),
            ("col", torch.from_numpy(m.indices.astype(np.int64))),
            ("t_crow", torch.from_numpy(t.indptr.astype(np.int32))),
            ("t_col", torch.from_numpy(t.indices.astype(np.int32))),
            ("perm", torch.from_numpy(perm)),
            ("inverse", torch.from_numpy(inverse)),
        ):
            self.register_buffer(name, value, persistent=False)

    @property
    def nnz(self) -> int:
        return int(self.col.shape[0])

    def _sides(self) -> tuple[_Side, _Side]:
        return (
            (self.crow, self.indices, self.n_rows, self.n_cols),
            (self.t_crow, self.t_col, self.n_cols, self.n_rows),
        )

    def sddmm(self, a: Tensor, b: Tensor) -> Tensor:
        """<a_r, b_c> for every entry (r, c), in CSR order (nnz,)."""
        side, side_t = self._sides()
        return _SDDMM.apply(a, b, side, side_t, self.perm)

    def spmm(self, v: Tensor, x: Tensor, base: Tensor | None = None) -> Tensor:
        """S(v) @ x (n_rows x d): row r is sum over its entries (r, c) of v * x_c; plus ``base``."""
        side, side_t = self._sides()
        return _SpMM.apply(v, x, base, side, side_t, self.perm)

    def spmm_t(self, v: Tensor, x: Tensor, base: Tensor | None = None) -> Tensor:
        """S(v)^T @ x (n_cols x d): row c is sum over its entries (r, c) of v * x_r; plus ``base``."""
        side, side_t = self._sides()
        return _SpMM.apply(v.index_select(0, self.perm), x, base, side_t, side, self.inverse)

    def attend(self, a: Tensor, x: Tensor) -> Tensor:
        """a + S(b) x, b the softmax within each row of sddmm(a, x): each row r attends over
        its entries' columns (bounded logits, e.g. unit vectors: no max-shift)."""
        side, side_t = self._sides()
        return _Attend.apply(a, x, side, side_t, self.perm, self.row)

    def power_sum(self, v: Tensor, x: Tensor, k: int) -> Tensor:
        """x + S(v) x + ... + S(v)^k x for a square pattern (k graph convolutions, summed)."""
        assert self.n_rows == self.n_cols, "power_sum needs a square pattern"
        side, side_t = self._sides()
        return _PowerSum.apply(v, x, k, side, side_t, self.perm)

    def row_softmax(self, logits: Tensor) -> Tensor:
        """Softmax of per-entry ``logits`` within each row (bounded logits: no max-shift)."""
        return _group_softmax(logits, self.row, self.n_rows)

    def col_softmax(self, logits: Tensor) -> Tensor:
        """Softmax of per-entry ``logits`` within each column (bounded logits: no max-shift)."""
        return _group_softmax(logits, self.col, self.n_cols)


def _group_softmax(logits: Tensor, index: Tensor, n: int) -> Tensor:
    e = logits.exp()
    denom = e.new_zeros(n).index_add_(0, index, e)
    return e / denom.index_select(0, index)
