"""The dense-product counter behind the speed table's floor column: hand-counted FLOPs."""

import torch

from benchmark.study.floor import ProductCount, gemm_rate, spmm_rate


def test_counts_forward_and_backward_products_in_every_overload() -> None:
    a = torch.randn(10, 20, requires_grad=True)
    b = torch.randn(20, 30)
    with ProductCount() as count:
        torch.mm(a.detach(), b, out=torch.empty(10, 30))  # 2·10·20·30
        assert count.dense_flops == 12_000
        (a @ b).sum().backward()  # forward, and grad_a = g @ bᵀ: b needs no gradient
        assert count.dense_flops == 36_000
        torch.baddbmm(torch.zeros(4, 10, 30), torch.randn(4, 10, 20), torch.randn(4, 20, 30))
        assert count.dense_flops == 36_000 + 4 * 12_000


def test_sparse_products_count_stored_entries_times_columns_and_elementwise_work_nothing() -> None:
    x = torch.randn(10, 8)
    graph = torch.eye(10).to_sparse_csr()  # 10 stored entries
    with ProductCount() as count:
        torch.sparse.mm(torch.eye(10).to_sparse_coo(), x)  # 10 · 8
        torch.sparse.addmm(x, graph, x)  # 10 · 8
        torch.sparse.sampled_addmm(graph, x, x.T)  # one 8-long dot per stored entry
        x.exp().sum()
    assert (count.dense_flops, count.sparse_macs) == (0, 240)


def test_rates_are_plausible() -> None:
    assert 1e8 < gemm_rate(size=256, repeats=2) < 1e14
    assert 1e6 < spmm_rate(torch.eye(4096).to_sparse_csr(), repeats=2) < 1e13
