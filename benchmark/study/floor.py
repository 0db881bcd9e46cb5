"""The product floor of a training step: how fast a model's maths could run on this core.

A model's step does dense matrix products (``mm``, ``addmm``, ``bmm``, ``baddbmm`` on strided
tensors) and sparse ones (a sparse matrix times a dense one, and the sampled dense-dense product
of an SDDMM) that no implementation of the same maths can skip. `ProductCount` counts both in
one step, forward and backward (custom autograd functions included, since their products
dispatch through the same operators): dense FLOPs (2·m·k·n) and sparse multiply-adds (stored
entries × dense columns). `gemm_rate` measures this core's float32 rate on a large square dense
product, the hardware's best case; `spmm_rate` the rate of the dataset's own graph product (the
one LightGCN's epoch is made of) with d = 64 columns. The step's floor is then
``dense / gemm_rate + sparse / spmm_rate``: elementwise work, sampling and the optimiser are left
out, so a model whose floor, as a ratio to LightGCN's measured epoch, is above its speed target
cannot meet that target at the same maths on this core.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten


# position of the first factor in each product operator's arguments (any overload, out= included)
_PRODUCTS = {
    aten.mm: 0,
    aten.bmm: 0,
    aten.addmm: 1,
    aten.addmm_: 1,
    aten._sparse_addmm: 1,
    aten.baddbmm: 1,
    aten.baddbmm_: 1,
    aten.sparse_sampled_addmm: 1,
}


def _nnz(t: torch.Tensor) -> int:
    return t._nnz() if t.layout != torch.strided else 0


def product_work(func: Any, args: tuple[Any, ...]) -> tuple[int, int]:
    """(dense FLOPs, sparse multiply-adds) of one operator call; (0, 0) if it is not a product."""
    first = _PRODUCTS.get(func.overloadpacket)
    if first is None:
        return 0, 0
    a, b = args[first], args[first + 1]
    if func.overloadpacket is aten.sparse_sampled_addmm:  # one k-long dot per stored entry
        return 0, _nnz(args[0]) * a.shape[-1]
    if a.layout != torch.strided:
        return 0, _nnz(a) * b.shape[-1]
    if b.layout != torch.strided:
        return 0, _nnz(b) * a.shape[-2]
    batch = a.shape[0] if a.dim() == 3 else 1
    return 2 * batch * a.shape[-2] * a.shape[-1] * b.shape[-1], 0


class ProductCount(TorchDispatchMode):
    """Counts the products of everything run inside it: ``dense_flops`` and ``sparse_macs``."""

    def __init__(self) -> None:
        super().__init__()
        self.dense_flops = 0
        self.sparse_macs = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        dense, sparse = product_work(func, args)
        self.dense_flops += dense
        self.sparse_macs += sparse
        return func(*args, **(kwargs or {}))


def best_of(fn: Callable[[], object], repeats: int, clock: Callable[[], float] = time.perf_counter) -> float:
    """The shortest of ``repeats`` calls of ``fn`` by ``clock`` (wall by default), never 0."""
    best = float("inf")
    for _ in range(repeats):
        t = clock()
        fn()
        best = min(best, clock() - t)
    return max(best, 1e-9)


def gemm_rate(size: int = 1536, repeats: int = 5) -> float:
    """This core's float32 dense product rate in FLOP/s (best of ``repeats`` square products)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    return 2 * size**3 / best_of(lambda: torch.mm(a, b), repeats, time.process_time)


def spmm_rate(graph: torch.Tensor, columns: int = 64, repeats: int = 5) -> float:
    """This core's rate, in sparse multiply-adds per second, of a square sparse ``graph`` times a
    dense matrix of ``columns`` columns, as LightGCN's layer does it (best of ``repeats``)."""
    x = torch.randn(graph.shape[1], columns)
    return _nnz(graph) * columns / best_of(lambda: torch.sparse.addmm(x, graph, x), repeats, time.process_time)
