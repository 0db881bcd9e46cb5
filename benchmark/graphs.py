"""Sparse graphs: the normalised user-item adjacency and blockwise item-item kNN graphs.

Everything stays sparse: degree normalisation is done with vectors, and a kNN graph is built a
block of rows at a time (top-k per block), so no items x items matrix ever exists.

Propagation goes through `SparseOperator`: ``torch.sparse.mm`` on a CSR matrix whose backward
multiplies by a transpose kept beside it (the matrix itself when symmetric). torch's own backward
of a CSR product rebuilds the transpose at every call, which made a LightGCN step 4x slower; PyG's
``LGConv`` (scatter over an ``edge_index``) was slower still. ``python -m benchmark.study.speed`` times
the variants and prints the figures.
"""

from __future__ import annotations

import functools
import hashlib
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from .paths import cache_dir

# torch calls its CSR support beta; the operations used here (mm, index) are the stable ones
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")


def to_torch_csr(m: sp.spmatrix) -> Tensor:
    m = sp.csr_matrix(m, dtype=np.float32)
    m.sort_indices()
    return torch.sparse_csr_tensor(
        torch.from_numpy(m.indptr.astype(np.int64)),
        torch.from_numpy(m.indices.astype(np.int64)),
        torch.from_numpy(m.data),
        size=m.shape,
        check_invariants=False,
    )


def bipartite(train: sp.csr_matrix) -> sp.csr_matrix:
    """The (U+I) x (U+I) symmetric adjacency [[0, R], [R^T, 0]] of the training interactions."""
    r = sp.csr_matrix(train, dtype=np.float32)
    return sp.bmat([[None, r], [r.T, None]], format="csr", dtype=np.float32)


def normalise(a: sp.spmatrix, kind: str = "sym", eps: float = 0.0) -> sp.csr_matrix:
    """``sym``: D^-1/2 A D^-1/2; ``row``: D^-1 A (degrees are row sums, zero rows stay zero)."""
    a = sp.csr_matrix(a, dtype=np.float32)
    deg = np.asarray(a.sum(axis=1)).ravel() + eps
    with np.errstate(divide="ignore"):
        if kind == "sym":
            d = np.where(deg > 0, deg**-0.5, 0.0).astype(np.float32)
            return sp.csr_matrix(sp.diags(d) @ a @ sp.diags(d))
        if kind == "row":
            d = np.where(deg > 0, 1.0 / deg, 0.0).astype(np.float32)
            return sp.csr_matrix(sp.diags(d) @ a)
    raise ValueError(f"unknown normalisation {kind!r}; known: sym, row")


def normalised_adjacency(train: sp.csr_matrix, kind: str = "sym", self_loops: bool = False) -> Tensor:
    """The normalised bipartite adjacency as a torch CSR tensor (LightGCN: ``sym``, no loops;
    LATTICE / MICRO: ``row`` with self loops)."""
    a = bipartite(train)
    if self_loops:
        a = a + sp.identity(a.shape[0], dtype=np.float32, format="csr")
    return to_torch_csr(normalise(a, kind))


def fp32(x: Tensor) -> Tensor:
    """``x`` in float32: CPU sparse products have no bfloat16 kernel, so under ``--precision bf16``
    the sparse steps run in float32 (the dense ones around them in bfloat16)."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


F = TypeVar("F", bound=Callable[..., Any])


def sparse_forward(forward: F) -> F:
    """For the ``forward`` of a sparse autograd Function: floating inputs in float32 and autocast
    off inside (see `fp32`); autograd casts the gradients back to the inputs' dtypes."""

    @functools.wraps(forward)
    def wrapper(ctx: Any, *args: Any) -> Any:
        args = tuple(fp32(a) if isinstance(a, Tensor) and a.is_floating_point() else a for a in args)
        device = next((a.device.type for a in args if isinstance(a, Tensor)), "cpu")
        with torch.autocast(device, enabled=False):
            return forward(ctx, *args)

    return wrapper  # type: ignore[return-value]


def sparse_mm(a: Tensor, x: Tensor) -> Tensor:
    """``torch.sparse.mm(a, x)`` in float32 whatever autocast says (see `fp32`)."""
    x = fp32(x)
    with torch.autocast(x.device.type, enabled=False):
        return torch.sparse.mm(a, x)


def _csr_mm(a: Tensor, x: Tensor) -> Tensor:
    """``a @ x`` for a sparse CSR ``a``. For a square ``a`` this is ``addmm`` with ``beta=0`` on
    ``x`` itself (ignored, NaN included): torch's ``sparse.mm`` also zero-fills and copies a fresh
    output, which made it slower on the LightGCN graphs. Never autocast (see `fp32`)."""
    x = fp32(x)
    with torch.autocast(x.device.type, enabled=False):
        return _csr_mm_fp32(a, x)


def _csr_mm_fp32(a: Tensor, x: Tensor) -> Tensor:
    if a.layout == torch.sparse_csr and a.shape[0] == a.shape[1] == x.shape[0] and x.dim() == 2:
        return torch.sparse.addmm(x, a, x, beta=0.0)
    return torch.sparse.mm(a, x)


class _SpMM(torch.autograd.Function):
    """a @ x whose backward is a_t @ grad: no transpose is built per call."""

    @staticmethod
    def forward(ctx, a: Tensor, a_t: Tensor, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.a_t = a_t
        return _csr_mm(a, x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[None, None, Tensor]:  # type: ignore[override]
        return None, None, _csr_mm(ctx.a_t, grad)


def symmetric_spmm(a: Tensor, x: Tensor) -> Tensor:
    """``a @ x`` for a symmetric sparse ``a`` built on the fly (an edge-dropout view, say): the
    backward multiplies by ``a`` again instead of transposing it."""
    return _SpMM.apply(a, a, x)


def transpose_csr(a: Tensor) -> Tensor:
    return a.to_sparse_coo().t().coalesce().to_sparse_csr()


class SparseOperator(torch.nn.Module):
    """A fixed sparse matrix as a module: ``op(x) = A @ x`` with a fast backward to ``x``.

    Its buffers are not persistent (they are data, not state), and move with ``.to(device)``.
    """

    def __init__(self, a: Tensor, symmetric: bool) -> None:
        super().__init__()
        a = a.to_sparse_csr() if a.layout != torch.sparse_csr else a
        self.symmetric = symmetric
        self.register_buffer("a", a, persistent=False)
        if not symmetric:
            self.register_buffer("a_t", transpose_csr(a), persistent=False)

    @property
    def shape(self) -> torch.Size:
        return self.a.shape

    def forward(self, x: Tensor) -> Tensor:
        return _SpMM.apply(self.a, self.a if self.symmetric else self.a_t, x)


def adjacency_operator(train: sp.csr_matrix, kind: str = "sym", self_loops: bool = False) -> SparseOperator:
    """`normalised_adjacency` as a `SparseOperator` (symmetric exactly when ``kind="sym"``)."""
    return SparseOperator(normalised_adjacency(train, kind, self_loops), symmetric=kind == "sym")


def _horner(a: Tensor, x: Tensor, n_layers: int) -> Tensor:
    """(I + A + ... + A^L) x / (L+1) as x' + A(x' + A(x' + ...)) with x' = x / (L+1): one fused
    sparse multiply-add per layer and no separate sums."""
    base = fp32(x) / (n_layers + 1)
    y = base
    with torch.autocast(x.device.type, enabled=False):
        for _ in range(n_layers):
            y = torch.sparse.addmm(base, a, y)
    return y


class _LayerMean(torch.autograd.Function):
    """The layer mean as one operator M = (I + A + ... + A^L) / (L+1); its gradient is M^T g, the
    same polynomial in A^T, so no layer output is kept for backward."""

    @staticmethod
    def forward(ctx, a: Tensor, a_t: Tensor, x: Tensor, n_layers: int) -> Tensor:  # type: ignore[override]
        ctx.a_t, ctx.n_layers = a_t, n_layers
        return _horner(a, x, n_layers)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[None, None, Tensor, None]:  # type: ignore[override]
        return None, None, _horner(ctx.a_t, grad, ctx.n_layers), None


def propagate(adj: SparseOperator | Tensor, x: Tensor, n_layers: int) -> Tensor:
    """LightGCN's layer mean: mean of x, Ax, ..., A^L x."""
    if isinstance(adj, SparseOperator):
        return _LayerMean.apply(adj.a, adj.a if adj.symmetric else adj.a_t, x, n_layers)
    out, h = fp32(x), fp32(x)
    with torch.autocast(x.device.type, enabled=False):
        for _ in range(n_layers):
            h = torch.sparse.mm(adj, h)
            out = out + h
    return out / (n_layers + 1)


def knn_graph(x: Tensor, k: int, block: int = 2048, include_self: bool = True) -> Tensor:
    """Cosine kNN graph of the rows of ``x``: a sparse COO (n x n) with exactly ``k`` entries per
    row holding the cosine similarities (LATTICE keeps the item itself among its neighbours).

    Built ``block`` rows at a time; the gradient flows to ``x`` through the kept values.
    """
    n = x.shape[0]
    if not 0 < k <= n - (0 if include_self else 1):
        raise ValueError(f"k={k} neighbours asked of {n} rows")
    xn = torch.nn.functional.normalize(x, dim=1)
    rows, cols, vals = [], [], []
    for start in range(0, n, block):
        sim = xn[start : start + block] @ xn.T
        if not include_self:
            idx = torch.arange(start, min(start + block, n), device=x.device)
            sim = sim.index_put((idx - start, idx), torch.tensor(-torch.inf, device=x.device))
        v, c = sim.topk(k, dim=1)
        rows.append(torch.arange(start, start + sim.shape[0], device=x.device).repeat_interleave(k))
        cols.append(c.reshape(-1))
        vals.append(v.reshape(-1))
    idx = torch.stack([torch.cat(rows), torch.cat(cols)])
    return torch.sparse_coo_tensor(idx, torch.cat(vals), (n, n)).coalesce()


def sym_normalise_sparse(a: Tensor) -> Tensor:
    """D^-1/2 A D^-1/2 of a sparse COO tensor (differentiable in its values), degrees as vectors."""
    a = a.coalesce()
    i, v = a.indices(), a.values()
    deg = torch.zeros(a.shape[0], device=v.device, dtype=v.dtype).index_add_(0, i[0], v)
    d = torch.where(deg > 0, deg.clamp_min(1e-12).rsqrt(), torch.zeros_like(deg))
    return torch.sparse_coo_tensor(i, d[i[0]] * v * d[i[1]], a.shape).coalesce()


def array_key(*parts: object) -> str:
    """A stable hash of arrays, tensors and plain values (for the graph cache)."""
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, Tensor):
            p = p.detach().cpu().numpy()
        if isinstance(p, np.ndarray):
            h.update(str(p.shape).encode() + str(p.dtype).encode())
            h.update(np.ascontiguousarray(p).tobytes())
        elif sp.issparse(p):
            c = sp.csr_matrix(p)
            h.update(c.indptr.tobytes() + c.indices.tobytes() + c.data.tobytes())
        else:
            h.update(repr(p).encode())
    return h.hexdigest()[:24]


def cached(kind: str, key: str, build: Callable[[], Tensor]) -> Tensor:
    """Load a derived graph from the on-disk cache, or build and store it (atomically)."""
    path = cache_dir() / f"{kind}-{key}.pt"
    if path.is_file():
        try:
            return torch.load(path, weights_only=True)
        except Exception:  # a corrupt cache entry is rebuilt, never trusted
            path.unlink(missing_ok=True)
    t = build()
    tmp = path.with_suffix(f".tmp{np.random.randint(1 << 30)}")
    torch.save(t, tmp)
    Path(tmp).replace(path)
    return t


def dense_rows(matrix: sp.csr_matrix, rows: Tensor, device: torch.device) -> Tensor:
    """``matrix[rows]`` as a dense float tensor on ``device``: a (len(rows) x columns) slab of a
    users x items CSR, for models that score a block of users' whole rows (MMSSL, DiffMM)."""
    return torch.from_numpy(matrix[rows.cpu().numpy()].toarray()).to(device)
