"""Item-item graph machinery shared by LATTICE, MICRO and HCGCN (one place, imported by the three).

Per modality m with raw item features X^m (I x F_m):

    original graph   S^m = topk_k(cos(X^m, X^m)),          A^m_orig = D^-1/2 S^m D^-1/2   (fixed)
    learned graph    S~^m = topk_k(cos(W_m X^m + b_m, ...)), normalised by the model that uses it
    mixing           A = (1 - lambda) A_learned + lambda A_orig   (sparse: union of the patterns)

``topk_k`` keeps exactly k entries per row (the item itself included, values = cosine similarity;
rows are not symmetrised) and degrees are row sums, as the reference ``build_knn_neighbourhood`` /
``compute_normalized_laplacian``. Everything is sparse: kNN graphs are built a block of rows at a
time (`benchmark.graphs.knn_graph`), degree scaling uses vectors (`sym_normalise_sparse`), and
a sum of graphs is a concatenation of (index, value) lists followed by ``coalesce``, and the
refresh batch's products with graphs whose values carry gradient go through `ValueSpmm` (whose
value gradient is one dot product per edge; torch.sparse.mm's backward would form a dense I x I
matrix). No items x items matrix exists on CPU or GPU, only a (block x I) similarity slab while a
graph is built. The original graphs go through the on-disk cache keyed by ``array_key(features, k)``.

Refresh protocol (`ItemGraphRecommender`): the learned graphs are rebuilt on the *first training
batch of every epoch* (``start_epoch`` only marks them stale), with gradient through that batch
only, and are stored detached (as `SparseOperator`s: CSR plus a stored transpose for the
backward) for the epoch's other batches -- the reference's ``build_item_graph=True`` on
``idx == 0``. Before every evaluation (``prepare_scoring``, eval mode) they are rebuilt under ``no_grad`` from the current parameters, as the reference's ``test()``
does; this also makes ``score`` a function of the state dict alone, so the test split is scored
with the graph of the restored best state, not of the last epoch.

Raw feature tables: trainable (``nn.Parameter``, the references' ``from_pretrained(freeze=False)``)
or fixed buffers. Trainable tables only receive gradient through the learned graph, i.e. on the
refresh batch. Memory cost of the trainable tables: with Adam, 4 copies (value, gradient, two
moments) plus one more in the trainer's best-state copy: on Amazon Clothing with the 4096-d image
and 1024-d text features (23,033 items) about 5 x 470 MB = 2.3 GB, versus 470 MB fixed.

MICRO's all-items contrastive term (`chunked_contrastive`) is computed a strip of anchor rows at a
time by `AllItemsLogSumExp`, which forms the loss and its gradient in two sweeps over the strips
(the symmetric anchor-anchor half only once per pair): one (I x rows) strip of exp-similarities is
alive at a time, and the backward pass only scales the stored gradients.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.data import Dataset
from benchmark.graphs import (
    SparseOperator,
    adjacency_operator,
    array_key,
    cached,
    knn_graph,
    sparse_forward,
    sparse_mm,
    sym_normalise_sparse,
)
from benchmark.model import DotProductRecommender

# bump when the construction below changes, so stale cache entries are never read
_GRAPH_VERSION = "knn-cos-topk-sym-v1"


def original_graph(x: np.ndarray, k: int) -> Tensor:
    """D^-1/2 topk_k(cos) D^-1/2 of the raw features ``x``: sparse COO, fixed, disk-cached."""

    def build() -> Tensor:
        with torch.no_grad():
            return sym_normalise_sparse(knn_graph(torch.from_numpy(np.array(x, dtype=np.float32)), k))

    return cached("itemknn", array_key(x, k, _GRAPH_VERSION), build)


def combine(terms: Iterable[tuple[float | Tensor, Tensor]]) -> Tensor:
    """sum_t w_t A_t of sparse COO graphs (weights may be tensors with gradient); the pattern is
    the union of the patterns, duplicates are summed by ``coalesce``."""
    idx, val, shape = [], [], None
    for w, a in terms:
        a = a.coalesce()
        idx.append(a.indices())
        val.append(w * a.values())
        shape = a.shape
    return torch.sparse_coo_tensor(torch.cat(idx, 1), torch.cat(val), shape).coalesce()


def keep_edges(a: Tensor, keep: Tensor) -> Tensor:
    """The sub-graph of COO ``a`` with the edges where the boolean ``keep`` (per nnz) holds."""
    a = a.coalesce()
    return torch.sparse_coo_tensor(a.indices()[:, keep], a.values()[keep], a.shape).coalesce()


def spmm(a: SparseOperator | Tensor, x: Tensor) -> Tensor:
    """a @ x for a fixed `SparseOperator` (stored transpose for the backward) or a coalesced
    sparse COO tensor (the refresh batch's graphs, whose values carry gradient: `ValueSpmm`)."""
    if isinstance(a, SparseOperator):
        return a(x)
    if a.requires_grad and torch.is_grad_enabled():
        return ValueSpmm.apply(a.indices(), a.values(), x, a.shape)
    return sparse_mm(a, x)


class ValueSpmm(torch.autograd.Function):
    """y = A x for a sparse A given by COO ``indices`` (coalesced) and ``values`` with gradient:

        dL/dA_e = <dL/dy_{r(e)}, x_{c(e)}>   (one dot product per edge e = (r, c)),   dL/dx = A^T dL/dy

    torch.sparse.mm's own backward forms dL/dy x^T as a dense (rows x cols) matrix and masks it
    to A's pattern: 180 MB and ~0.9 s per call on TikTok's 6,710 items, 2 GB at 23k items. Here the
    edge dot products go a block of edges at a time, O(nnz d).
    """

    EDGE_BLOCK = 1 << 16  # edges per gathered (block x d) pair in the value gradient

    @staticmethod
    @sparse_forward
    def forward(ctx, indices: Tensor, values: Tensor, x: Tensor, shape: torch.Size) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(indices, values, x)
        ctx.shape = shape
        a = torch.sparse_coo_tensor(indices, values, shape, is_coalesced=True)
        return torch.sparse.mm(a, x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[None, Tensor | None, Tensor | None, None]:  # type: ignore[override]
        indices, values, x = ctx.saved_tensors
        grad_values = grad_x = None
        if ctx.needs_input_grad[1]:
            rows, cols, step = indices[0], indices[1], ValueSpmm.EDGE_BLOCK
            grad_values = values.new_empty(values.shape)
            for s in range(0, len(values), step):
                grad_values[s : s + step] = (grad[rows[s : s + step]] * x[cols[s : s + step]]).sum(1)
        if ctx.needs_input_grad[2]:
            a_t = torch.sparse_coo_tensor(indices.flip(0), values, (ctx.shape[1], ctx.shape[0])).coalesce()
            grad_x = torch.sparse.mm(a_t, grad)
        return None, grad_values, grad_x, None


class ModalFeatures(nn.Module):
    """Raw feature tables (trainable or fixed) and the per-modality Linear(F_m -> d) ``trs``."""

    def __init__(self, data: Dataset, out_dim: int, trainable: bool) -> None:
        super().__init__()
        self.modalities: tuple[str, ...] = tuple(data.modalities)
        self.trainable = trainable
        self.raw = nn.ParameterDict()
        for m in self.modalities:
            x = torch.from_numpy(np.array(data.features[m], dtype=np.float32))
            if trainable:
                self.raw[m] = nn.Parameter(x)
            else:
                self.register_buffer(f"raw_{m}", x, persistent=False)
        self.trs = nn.ModuleDict({m: nn.Linear(data.features[m].shape[1], out_dim) for m in self.modalities})

    def table(self, m: str) -> Tensor:
        return self.raw[m] if self.trainable else getattr(self, f"raw_{m}")

    def transformed(self) -> dict[str, Tensor]:
        return {m: self.trs[m](self.table(m)) for m in self.modalities}


class ModalityAttention(nn.Module):
    """MICRO's per-item attention over modalities: a_m = softmax_m(w^T tanh(W h_m + b))."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.query = nn.Sequential(nn.Linear(dim, dim), nn.Tanh(), nn.Linear(dim, 1, bias=False))

    def forward(self, hs: list[Tensor]) -> tuple[Tensor, Tensor]:
        weights = torch.softmax(torch.cat([self.query(h) for h in hs], dim=-1), dim=-1)
        fused = sum(weights[:, k : k + 1] * h for k, h in enumerate(hs))
        return fused, weights


class AllItemsLogSumExp(torch.autograd.Function):
    """The InfoNCE denominators over all rows and their gradient, a strip of rows at a time.

    For unit rows a_i (anchors) and b_j (view), n rows each, temperature tau:

        L = sum_i log Z_i,    Z_i = sum_j B_ij + sum_{j != i} A_ij,
        B_ij = e^{a_i.b_j / tau},   A_ij = e^{a_i.a_j / tau}   (A symmetric),   w_i = 1 / Z_i

        dL/da_i = (1/tau) [ w_i sum_j B_ij b_j  +  sum_{j != i} A_ij (w_i + w_j) a_j ]
        dL/db_j = (1/tau) sum_i w_i B_ij a_i

    A term of the B part needs only its own row's w_i, so a strip of rows turns its (rows x n)
    block of B into loss and gradient at once (three GEMMs, no recompute). A is used through its
    symmetry: a strip I only forms its upper part A_{I, j >= I} (half of A over all strips), whose
    row sums go to Z_I and column sums to Z_j of later rows -- so Z_I is complete when strip I is
    reached, and B's strip follows it in the same sweep. The A-gradient needs w_j of later rows,
    so a second sweep recomputes the upper strips: 5 (n^2 d) GEMM multiply-adds per call against
    6 for the plain strip pass (A and B both in full, each pair of A twice) and 8 for the chunked
    checkpointed autograd it replaces. All of it runs in ``forward`` (the upstream gradient is one
    scalar, applied in ``backward``): only the two (n x d) gradients are kept, and no (n x n)
    matrix exists, at most one (n x rows) strip. The exp has no max-shift, as the reference:
    |a_i.k_j| <= 1 bounds it by e^{1/tau}.
    """

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, tau: float, rows: int) -> Tensor:  # type: ignore[override]
        n = a.shape[0]
        need_grad = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        buf = a.new_empty(n * min(rows, n))  # one strip buffer for all strips and both sweeps
        z_a = a.new_zeros(n)  # sum_{j != i} A_ij, completed strip by strip
        w = a.new_empty(n)
        grad_a = a.new_empty(a.shape) if need_grad else None
        grad_b = torch.zeros_like(b) if need_grad else None
        total = a.new_zeros(())
        for s, q in _strips(a, tau, rows):
            r = q.shape[0]
            upper = _upper_strip(a, q, s, buf)
            z_a[s : s + r] += upper.sum(0)
            z_a[s + r :] += upper[r:].sum(1)
            # strips are kept transposed, (n x rows): b @ q^T ran twice as fast as q @ b^T (MKL,
            # one thread, d = 64)
            bt = torch.mm(b, q.T, out=buf[: n * r].view(n, r)).exp_()
            z = z_a[s : s + r] + bt.sum(0)
            total += z.log().sum()
            if need_grad:
                w[s : s + r] = z.reciprocal()
                torch.mm(bt.T, b, out=grad_a[s : s + r]).mul_((w[s : s + r] / tau)[:, None])
                grad_b.addmm_(bt, q * w[s : s + r, None])
        if need_grad:
            for s, q in _strips(a, tau, rows):
                r = q.shape[0]
                m = _upper_strip(a, q, s, buf)
                m.mul_(w[s:, None] + w[None, s : s + r])  # A_ij (w_i + w_j)
                # the diagonal block holds both (i, j) and (j, i): its product alone covers both
                grad_a[s : s + r].addmm_(m.T, a[s:], alpha=1.0 / tau)
                grad_a[s + r :].addmm_(m[r:], a[s : s + r], alpha=1.0 / tau)
            ctx.save_for_backward(grad_a, grad_b)
        return total

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor, None, None]:  # type: ignore[override]
        grad_a, grad_b = ctx.saved_tensors
        return grad * grad_a, grad * grad_b, None, None


def _strips(a: Tensor, tau: float, rows: int) -> Iterator[tuple[int, Tensor]]:
    """(start, a[start:start+rows] / tau) for consecutive strips of rows."""
    for s in range(0, a.shape[0], rows):
        yield s, a[s : s + rows] / tau  # 1/tau on the strip, not on the (n x rows) products


def _upper_strip(a: Tensor, q: Tensor, start: int, buf: Tensor) -> Tensor:
    """e^{a_j . q_i} for j >= start, as (n - start) x rows in ``buf``, with the j = i entries 0."""
    r = q.shape[0]
    out = torch.mm(a[start:], q.T, out=buf[: (a.shape[0] - start) * r].view(-1, r)).exp_()
    out[:r].diagonal().zero_()
    return out


def chunked_contrastive(anchor: Tensor, view: Tensor, tau: float, rows: int = 256) -> Tensor:
    """GRACE node-level InfoNCE over all rows, one direction (MICRO's ``batched_contrastive_loss``):

        l_i = -log( e^{s(z_i, h_i)/tau} / (sum_j e^{s(z_i, h_j)/tau} + sum_{j != i} e^{s(z_i, z_j)/tau}) )
            = log Z_i - s(z_i, h_i)/tau

    z = ``anchor``, h = ``view``, s = cosine; the mean of l_i over all rows. The denominators go
    through `AllItemsLogSumExp`, ``rows`` anchors per strip (one (n x rows) block alive), the
    positives and the cosine through autograd.
    """
    a, b = F.normalize(anchor, dim=1), F.normalize(view, dim=1)
    log_z = AllItemsLogSumExp.apply(a, b, tau, rows)
    return (log_z - (a * b).sum() / tau) / a.shape[0]


class ItemGraphRecommender(DotProductRecommender):
    """Base of the LATTICE family: raw/transformed modal features, original kNN graphs, the CF
    adjacency D^-1 (A + I), and the per-epoch learned-graph refresh described above.

    Subclasses implement `build_item_graphs` (a dict name -> sparse graph, differentiable where
    grad is enabled) and ``forward()`` returning (users, items, *extras); they read the current
    graphs with `item_graphs`. Scoring is the dot product of the first two outputs.
    """

    requires_features = True

    def __init__(
        self,
        data: Dataset,
        config,
        *,
        feat_dim: int,
        knn_k: int,  # type: ignore[no-untyped-def]
        train_raw_features: bool,
    ) -> None:
        super().__init__(data, config)
        self.knn_k = knn_k
        self.feats = ModalFeatures(data, feat_dim, train_raw_features)
        self.modalities = self.feats.modalities
        for m in self.modalities:
            self.register_buffer(f"orig_{m}", original_graph(data.features[m], knn_k), persistent=False)
        self.adj = adjacency_operator(data.train, "row", self_loops=True)
        self._graphs: dict[str, SparseOperator] = {}
        self._stale = True

    def original(self, m: str) -> Tensor:
        return getattr(self, f"orig_{m}")

    def learned_knn(self, x: Tensor) -> Tensor:
        """topk_k(cos) of transformed features, un-normalised, differentiable in its values."""
        return knn_graph(x, self.knn_k)

    def build_item_graphs(self) -> dict[str, Tensor]:
        raise NotImplementedError

    def start_epoch(self, epoch: int) -> None:
        self._stale = True

    def item_graphs(self) -> dict[str, Tensor | SparseOperator]:
        """The graphs for this forward pass: freshly built (with gradient) on the first training
        batch of an epoch and in eval mode; the stored detached copies otherwise."""
        fresh = (
            self._stale
            or not self.training
            or not self._graphs
            or next(iter(self._graphs.values())).a.device != self.adj.a.device
        )
        if not fresh:
            return self._graphs
        graphs = self.build_item_graphs()
        self._graphs = {k: SparseOperator(g.detach(), symmetric=False) for k, g in graphs.items()}
        if self.training:
            self._stale = False
        return graphs
