"""Item-item graph machinery shared by LATTICE, MICRO and HCGCN (one place, imported by the three).

Per modality m with raw item features X^m (I x F_m):

    original graph   S^m = topk_k(cos(X^m, X^m)),          A^m_orig = D^-1/2 S^m D^-1/2   (fixed)
    learned graph    S~^m = topk_k(cos(W_m X^m + b_m, ...)), normalised by the model that uses it
    mixing           A = (1 - lambda) A_learned + lambda A_orig   (sparse: union of the patterns)

``topk_k`` keeps exactly k entries per row (the item itself included, values = cosine similarity;
rows are not symmetrised) and degrees are row sums, as the reference ``build_knn_neighbourhood`` /
``compute_normalized_laplacian``. Everything is sparse: kNN graphs are built a block of rows at a
time (`benchmark.graphs.knn_graph`), degree scaling uses vectors (`sym_normalise_sparse`), and
a sum of graphs is a concatenation of (index, value) lists followed by ``coalesce``. No
items x items matrix exists on CPU or GPU, only a (block x I) similarity slab while a graph is
built. The original graphs go through the on-disk cache keyed by ``array_key(features, k)``.

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

MICRO's all-items contrastive term (`chunked_contrastive`) is computed a chunk of anchor rows at a
time, each chunk under activation checkpointing: only one (chunk x I) block of similarities and its
exp live at once, in the forward and (recomputed) in the backward pass.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from benchmark.data import Dataset
from benchmark.graphs import (SparseOperator, adjacency_operator, array_key, cached, knn_graph,
                              sym_normalise_sparse)
from benchmark.model import Recommender

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


def spmm(a: "SparseOperator | Tensor", x: Tensor) -> Tensor:
    """a @ x for a fixed `SparseOperator` (stored transpose for the backward) or a sparse tensor
    (the refresh batch's graphs, whose values carry gradient)."""
    return a(x) if isinstance(a, SparseOperator) else torch.sparse.mm(a, x)


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
        self.trs = nn.ModuleDict({m: nn.Linear(data.features[m].shape[1], out_dim)
                                  for m in self.modalities})

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
        fused = sum(weights[:, k:k + 1] * h for k, h in enumerate(hs))
        return fused, weights


def _contrast_chunk(a: Tensor, b: Tensor, start: int, size: int, tau: float) -> Tensor:
    """Sum over anchors a[start:start+size] of -log(pos / (sum refl + sum between - self))."""
    q = a[start:start + size] / tau  # 1/tau on the chunk, not on the (chunk x n) products
    refl = torch.exp(q @ a.T).sum(1)
    between = torch.exp(q @ b.T).sum(1)
    pos = (q * b[start:start + size]).sum(1)
    self_sim = torch.exp((q * a[start:start + size]).sum(1))
    return (torch.log(refl + between - self_sim) - pos).sum()


def chunked_contrastive(anchor: Tensor, view: Tensor, tau: float, chunk: int = 4096,
                        use_checkpoint: bool = True) -> Tensor:
    """GRACE node-level InfoNCE over all rows, one direction (MICRO's ``batched_contrastive_loss``):

        l_i = -log( e^{s(z_i, h_i)/tau} / (sum_j e^{s(z_i, h_j)/tau} + sum_{j != i} e^{s(z_i, z_j)/tau}) )

    z = ``anchor``, h = ``view``, s = cosine; the mean of l_i over all rows. Computed ``chunk``
    anchor rows at a time; with ``use_checkpoint`` each chunk's similarities are recomputed in the
    backward pass instead of kept, so at most one (chunk x n) block is alive.
    """
    a, b = F.normalize(anchor, dim=1), F.normalize(view, dim=1)
    n = a.shape[0]
    ckpt = use_checkpoint and torch.is_grad_enabled() and (a.requires_grad or b.requires_grad)
    total = a.new_zeros(())
    for s in range(0, n, chunk):
        if ckpt:
            total = total + checkpoint(_contrast_chunk, a, b, s, chunk, tau,
                                       use_reentrant=False, preserve_rng_state=False)
        else:
            total = total + _contrast_chunk(a, b, s, chunk, tau)
    return total / n


class ItemGraphRecommender(Recommender):
    """Base of the LATTICE family: raw/transformed modal features, original kNN graphs, the CF
    adjacency D^-1 (A + I), and the per-epoch learned-graph refresh described above.

    Subclasses implement `build_item_graphs` (a dict name -> sparse graph, differentiable where
    grad is enabled) and ``forward()`` returning (users, items, *extras); they read the current
    graphs with `item_graphs`. Scoring is the dot product of the first two outputs.
    """

    requires_features = True

    def __init__(self, data: Dataset, config, *, feat_dim: int, knn_k: int,  # type: ignore[no-untyped-def]
                 train_raw_features: bool) -> None:
        super().__init__(data, config)
        self.knn_k = knn_k
        self.feats = ModalFeatures(data, feat_dim, train_raw_features)
        self.modalities = self.feats.modalities
        for m in self.modalities:
            self.register_buffer(f"orig_{m}", original_graph(data.features[m], knn_k), persistent=False)
        self.adj = adjacency_operator(data.train, "row", self_loops=True)
        self._graphs: dict[str, SparseOperator] = {}
        self._stale = True
        self._cache: tuple[Tensor, Tensor] | None = None

    def original(self, m: str) -> Tensor:
        return getattr(self, f"orig_{m}")

    def learned_knn(self, x: Tensor) -> Tensor:
        """topk_k(cos) of transformed features, un-normalised, differentiable in its values."""
        return knn_graph(x, self.knn_k)

    def build_item_graphs(self) -> dict[str, Tensor]:
        raise NotImplementedError

    def start_epoch(self, epoch: int) -> None:
        self._stale = True

    def item_graphs(self) -> "dict[str, Tensor | SparseOperator]":
        """The graphs for this forward pass: freshly built (with gradient) on the first training
        batch of an epoch and in eval mode; the stored detached copies otherwise."""
        fresh = self._stale or not self.training or not self._graphs or \
            next(iter(self._graphs.values())).a.device != self.adj.a.device
        if not fresh:
            return self._graphs
        graphs = self.build_item_graphs()
        self._graphs = {k: SparseOperator(g.detach(), symmetric=False) for k, g in graphs.items()}
        if self.training:
            self._stale = False
        return graphs

    def prepare_scoring(self) -> None:
        self._cache = self.forward()[:2]

    def score(self, users: Tensor) -> Tensor:
        u, i = self._cache if self._cache is not None else self.forward()[:2]
        return u[users] @ i.T

    def train(self, mode: bool = True) -> "ItemGraphRecommender":
        self._cache = None  # embeddings cached for scoring go stale once the mode changes
        return super().train(mode)
