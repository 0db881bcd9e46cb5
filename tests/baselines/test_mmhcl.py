"""MMHCL: both hypergraphs by hand, their sparse build at a size where a dense one would show, the
forward pass, the all-population InfoNCE against a dense reference, and what a ratio of 0 does
(the generic contract tests live in test_models.py).

Hand-made input (4 users, 4 items). Train: u0-{i0, i1, i2}, u1-{i0, i1}, u2-{i0}, u3-{i3}.

    R R^T off the diagonal: u0-u1 share i0, i1 (2); u0-u2 and u1-u2 share i0 (1); u3 nobody
    row sums [3, 3, 2, 0]  ->  A_uu = [[0, 2/3, 1/3, 0], [2/3, 0, 1/3, 0], [1/2, 1/2, 0, 0], 0]

Features, k = 2 (the item itself + 1 neighbour):
    visual  x0 = [1, 0], x1 = [6, 2], x2 = [1, 3], x3 = [-2, 1]
            cos(0,1) .9487, cos(0,2) .3162, cos(1,2) .6, cos(2,3) .1414, cos(0,3) -.8944, cos(1,3) -.7071
            rows -> {0, 1}, {1, 0}, {2, 1}, {3, 2}
    text    t0 = e1, t1 = e2, t2 = e3, t3 = [1, .2, 0]
            cos(0,3) .9806, cos(1,3) .1961, t2 orthogonal to all (its 2nd neighbour has cosine 0,
            which the reference's ``adj[adj > 0] = 1`` leaves at 0: row 2 keeps itself only)
            rows -> {0, 3}, {1, 3}, {2}, {3, 0}
    H = [H_v | H_t]: item a is in hyperedge (m, j) when j is among a's neighbours in m:
            i0: v{0,1} t{0,3};  i1: v{0,1} t{1,3};  i2: v{1,2} t{2};  i3: v{2,3} t{0,3}
    H H^T (shared hyperedges)  [[4, 3, 1, 2], [3, 4, 1, 1], [1, 1, 3, 1], [2, 1, 1, 4]],
            degrees [10, 9, 6, 8],  A_ii = (H H^T)_ab / sqrt(d_a d_b)
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from baselines._item_graphs import chunked_contrastive
from baselines.mmhcl import MMHCL, item_hypergraph, knn_incidence, user_hypergraph
from benchmark.config import build_config
from benchmark.data import from_triples
from benchmark.model import Batch

X_V = np.array([[1, 0], [6, 2], [1, 3], [-2, 1]], dtype=np.float32)
X_T = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0.2, 0]], dtype=np.float32)

A_UU = torch.tensor(
    [
        [0, 2 / 3, 1 / 3, 0],
        [2 / 3, 0, 1 / 3, 0],
        [1 / 2, 1 / 2, 0, 0],
        [0, 0, 0, 0],
    ]
)
HHT = torch.tensor([[4.0, 3, 1, 2], [3, 4, 1, 1], [1, 1, 3, 1], [2, 1, 1, 4]])
DEG = torch.tensor([10.0, 9, 6, 8])
A_II = HHT / (DEG[:, None] * DEG[None, :]).sqrt()


def tiny_data():  # type: ignore[no-untyped-def]
    u = np.array([0, 0, 0, 1, 1, 2, 3, 2, 1, 0, 3])
    i = np.array([0, 1, 2, 0, 1, 0, 3, 3, 2, 3, 1])
    s = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 2])
    return from_triples("tiny", u, i, s, 4, 4, {"v": X_V, "t": X_T})


def make(data, **overrides) -> MMHCL:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    return MMHCL(data, build_config(MMHCL.Config, {"knn_k": 2, **overrides}))


def tiny_batch() -> Batch:
    return Batch(torch.tensor([0, 1, 2, 3, 0]), torch.tensor([0, 1, 0, 3, 2]), torch.tensor([3, 2, 1, 0, 3]))


def dense_grace(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> torch.Tensor:
    """The reference's batched_contrastive_loss(z1, z2) in one block."""
    a, b = F.normalize(z1), F.normalize(z2)
    refl, between = torch.exp(a @ a.T / tau), torch.exp(a @ b.T / tau)
    return -torch.log(between.diag() / (refl.sum(1) + between.sum(1) - refl.diag())).mean()


# ---- graphs by hand ----


def test_user_hypergraph_by_hand() -> None:
    data = tiny_data()
    a = user_hypergraph(data.train)
    assert a.layout == torch.sparse_coo and a._nnz() == 6
    torch.testing.assert_close(a.to_dense(), A_UU)


def test_user_hypergraph_counts_an_interaction_once() -> None:
    # a duplicated training pair (stored value 2) is one interaction, as in the reference's 0/1 R
    r = sp.csr_matrix(np.array([[2, 1, 0], [1, 0, 1], [0, 0, 0]], dtype=np.float32))
    want = torch.tensor([[0.0, 1, 0], [1, 0, 0], [0, 0, 0]])
    torch.testing.assert_close(user_hypergraph(r).to_dense(), want)


def test_item_hypergraph_by_hand() -> None:
    a = item_hypergraph([X_V, X_T], 2)
    assert a.layout == torch.sparse_coo and a._nnz() == 16
    torch.testing.assert_close(a.to_dense(), A_II)
    # the modality order is immaterial to H H^T
    torch.testing.assert_close(item_hypergraph([X_T, X_V], 2).to_dense(), A_II)


def test_incidence_keeps_the_references_rule_for_non_positive_neighbours() -> None:
    # k = 3 on the visual features: row 3 keeps 3 (1), 2 (.1414 -> 1) and 1 (cos -.7071 stays)
    h = knn_incidence(X_V, 3).toarray()
    want = np.array([[1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 1, 0], [0, -1 / np.sqrt(2), 1, 1]], dtype=np.float32)
    np.testing.assert_allclose(h, want, rtol=1e-6)


def test_model_uses_the_hand_graphs() -> None:
    model = make(tiny_data())
    torch.testing.assert_close(model.a_uu.a.to_dense(), A_UU)
    torch.testing.assert_close(model.a_ii.a.to_dense(), A_II)
    assert model.describe()["user_graph_nnz"] == 6 and model.describe()["item_graph_nnz"] == 16


_SPARSE_BUILD = r"""
import resource, sys
import numpy as np, scipy.sparse as sp
from baselines.mmhcl import item_hypergraph, user_hypergraph
U, I, per_user = 30000, 20000, 5
rng = np.random.default_rng(0)
rows = np.repeat(np.arange(U), per_user)
cols = rng.integers(0, I, U * per_user)
r = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(U, I))
feats = [rng.standard_normal((I, 16)).astype(np.float32), rng.random((I, 8)).astype(np.float32)]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
a = user_hypergraph(r) if sys.argv[1] == "user" else item_hypergraph(feats, 5)
print(a._nnz(), (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
"""


def build_at_size(which: str, cache) -> tuple[int, float]:  # type: ignore[no-untyped-def]
    env = {"OMP_NUM_THREADS": "1", "MMIL_BENCH_CACHE": str(cache), "PATH": ""}
    argv = [sys.executable, "-c", _SPARSE_BUILD, which]
    nnz, grown_mb = subprocess.run(argv, capture_output=True, text=True, env=env, check=True).stdout.split()
    return int(nnz), float(grown_mb)


def test_graph_build_stays_sparse_at_size(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """30,000 users and 20,000 items: a dense U x U takes 3.6 GB, a dense I x I 1.6 GB (the
    reference's way); the sparse / blockwise build (measured: ~190 MB each, mostly copies of the
    COO lists and one 2048 x I similarity slab) must stay far below either, and its non-zeros must
    be exactly the co-occurring pairs."""
    nnz_uu, grown_uu = build_at_size("user", tmp_path)
    nnz_ii, grown_ii = build_at_size("item", tmp_path)
    assert grown_uu < 800 and grown_ii < 800, f"peak RSS grew by {grown_uu} / {grown_ii} MB"
    # the user graph's inputs, counted independently: ordered pairs of distinct users sharing an item
    U, I, per_user = 30000, 20000, 5
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(U), per_user)
    items = rng.integers(0, I, U * per_user)
    order = np.argsort(items, kind="stable")
    pairs = set()
    for group in np.split(users[order], np.flatnonzero(np.diff(items[order])) + 1):
        g = np.unique(group)
        pairs.update(int(a) * U + int(b) for a in g for b in g if a != b)
    assert nnz_uu == len(pairs)
    # the item graph: each item is in 2 x 5 hyperedges (its own included), so its row has between
    # 1 and 10 x (largest hyperedge) entries; mean hyperedge size is 5
    assert I < nnz_ii < I * 10 * 5 * 4


# ---- forward ----


def test_forward_by_hand() -> None:
    data = tiny_data()
    model = make(data)
    a_ui = model.adj.a.to_dense()
    e = torch.cat([model.user.weight, model.item.weight]).detach()
    cf = (e + a_ui @ e + a_ui @ a_ui @ e) / 3  # ui_layers 2, layer mean
    u2 = A_UU @ A_UU @ A_UU @ model.user_hyper.weight.detach()  # user_layers 3, last layer only
    i2 = A_II @ A_II @ model.item_hyper.weight.detach()  # item_layers 2, last layer only
    with torch.no_grad():
        users, items, got_u2, got_i2 = model.forward()
    torch.testing.assert_close(got_u2, u2)
    torch.testing.assert_close(got_i2, i2)
    torch.testing.assert_close(users, cf[:4] + F.normalize(u2, dim=1))
    torch.testing.assert_close(items, cf[4:] + F.normalize(i2, dim=1))
    model.eval()
    with torch.no_grad():
        model.prepare_scoring()
        torch.testing.assert_close(model.score(torch.arange(4)), users @ items.T)


def test_loss_is_the_reference_formula() -> None:
    data = tiny_data()
    model = make(data, reg_weight=0.1, user_ratio=0.3, item_ratio=0.7, tau=0.5, contrast_chunk=3)
    b = tiny_batch()
    got = model.loss(b)
    with torch.no_grad():
        users, items, u2, i2 = model.forward()
        u, i, j = users[b.users], items[b.pos], items[b.neg]
        bpr = -F.logsigmoid((u * i).sum(1) - (u * j).sum(1)).mean()
        reg = 0.1 * 0.5 * (u.pow(2).sum() + i.pow(2).sum() + j.pow(2).sum()) / 5
        item_cl = 0.7 * dense_grace(items, i2, 0.5)
        user_cl = 0.3 * dense_grace(users, u2, 0.5)
    for key, want in (("bpr", bpr), ("reg", reg), ("item_cl", item_cl), ("user_cl", user_cl)):
        torch.testing.assert_close(got[key].detach(), want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got["loss"].detach(), bpr + reg + item_cl + user_cl, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("rows", [1, 4, 7, 100])
def test_infonce_values_and_gradients_equal_a_dense_reference(rows: int) -> None:
    """The final embedding is the anchor (its own similarities enter the denominator, without the
    diagonal), the hypergraph view the other side, gradient into both (the reference)."""
    torch.manual_seed(0)
    z1 = torch.randn(23, 8, dtype=torch.float64, requires_grad=True)
    z2 = torch.randn(23, 8, dtype=torch.float64, requires_grad=True)
    want = dense_grace(z1, z2, 0.6)
    got = chunked_contrastive(z1, z2, 0.6, rows=rows)
    torch.testing.assert_close(got, want)
    for g, w in zip(torch.autograd.grad(got, (z1, z2)), torch.autograd.grad(want, (z1, z2)), strict=True):
        torch.testing.assert_close(g, w)
    # the direction matters: the anchor's self-similarities are not the view's
    assert not torch.isclose(chunked_contrastive(z2, z1, 0.6), want)


# ---- a ratio of 0 ----


@pytest.mark.parametrize("off", ["item", "user"])
def test_zero_ratio_removes_the_branch(off: str) -> None:
    """The reference skips the branch's propagation and its addition to the final embedding; its
    0-weighted loss term gives no gradient, so the branch's table never moves."""
    data = tiny_data()
    model = make(data, **{f"{off}_ratio": 0.0})
    full = make(data)
    with torch.no_grad():
        users, items, u2, i2 = model.forward()
        f_users, f_items, _, _ = full.forward()  # same seed: the same four tables
        out = torch.cat([model.user.weight, model.item.weight])
    a = model.adj.a.to_dense()
    cf = (out + a @ out + a @ a @ out) / 3
    if off == "item":
        assert i2 is None and u2 is not None
        torch.testing.assert_close(items, cf[4:])
        torch.testing.assert_close(users, f_users)
    else:
        assert u2 is None and i2 is not None
        torch.testing.assert_close(users, cf[:4])
        torch.testing.assert_close(items, f_items)
    table = model.item_hyper if off == "item" else model.user_hyper
    other = model.user_hyper if off == "item" else model.item_hyper
    before, other_before = table.weight.detach().clone(), other.weight.detach().clone()
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    terms = model.loss(tiny_batch())
    assert terms[f"{off}_cl"].item() == 0.0
    opt.zero_grad(set_to_none=True)
    terms["loss"].backward()
    opt.step()
    assert table.weight.grad is None
    torch.testing.assert_close(table.weight.detach(), before)
    assert not torch.equal(other.weight.detach(), other_before)
    assert model.describe()["branches"] == (["u2u"] if off == "item" else ["i2i"])


def test_both_ratios_zero_is_lightgcn_with_l2_on_the_finals() -> None:
    data = tiny_data()
    model = make(data, user_ratio=0.0, item_ratio=0.0)
    b = tiny_batch()
    terms = model.loss(b)
    with torch.no_grad():
        out = torch.cat([model.user.weight, model.item.weight])
        a = model.adj.a.to_dense()
        cf = (out + a @ out + a @ a @ out) / 3
        u, i, j = cf[:4][b.users], cf[4:][b.pos], cf[4:][b.neg]
        bpr = -F.logsigmoid((u * i).sum(1) - (u * j).sum(1)).mean()
        reg = 1e-3 * 0.5 * (u.pow(2).sum() + i.pow(2).sum() + j.pow(2).sum()) / 5
    torch.testing.assert_close(terms["loss"].detach(), bpr + reg)
