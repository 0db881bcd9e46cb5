"""LATTICE (Zhang et al., ACM MM'21): a learned latent item-item graph on top of LightGCN.

Per modality m (raw item features X^m, trainable by default; w = softmax(omega), omega in R^|M|):

    S~^m     = topk_k(cos(W_m X^m + b_m))                            learned kNN (k per row)
    A_learn  = D^-1/2 (sum_m w_m S~^m) D^-1/2                        weighted, then normalised
    A_orig   = sum_m w_m D_m^-1/2 S^m D_m^-1/2,  S^m = topk_k(cos(X^m))   fixed, disk-cached
    A_item   = (1 - lambda) A_learn + lambda A_orig
    h        = A_item^{L_i} E_item                                   item-graph conv, no weights
    E        = mean_{l=0..L} (D^-1 (A + I))^l [E_user; E_item]      LightGCN on the row-normalised
                                                                     bipartite graph with self loops
    e_u = E_u,   e_i = E_i + h_i / ||h_i||,   s_ui = <e_u, e_i>
    L = BPR + reg_weight * 0.5 (||e_u||^2 + ||e_i||^2 + ||e_j||^2) / B

Defaults (reference ``codes/parser.py`` / ``main.py``): d = feat_embed_dim = 64, k = 10,
lambda = 0.9, L_i = 1 item layer, L = 2 CF layers (weight_size [64, 64]), decay 1e-5, lr 5e-4,
batch 1024, lr x 0.96^(epoch/50) (``train_defaults``). The softmax weights start uniform (the
reference's [0.5, 0.5] for two modalities). Modalities: whatever the dataset has (Amazon / synthetic
v + t, TikTok v + a); ``describe()`` records them.

Decisions and deviations (see ``baselines/_item_graphs.py`` for the shared graph code):
- Sparse everywhere: the reference builds dense I x I similarity, kNN, diagflat and D S D matrices
  (10-20 GB on Clothing). Here every graph is a sparse top-k COO built a block of rows at a time,
  degree-normalised with vectors; A_item has at most 2|M| k entries per row. Same numbers.
- Graph refresh: the learned graph is rebuilt on the first training batch of each epoch, with
  gradient to trs / omega / raw features through that batch only, and detached afterwards (as the
  reference). It is also rebuilt (no grad) before every evaluation, as the reference's test().
- ``train_raw_features`` (default True = reference, ``from_pretrained(freeze=False)``): the raw
  tables are parameters and get gradient only on the refresh batch. Memory: 4-5x the raw tables
  (value, grad, two Adam moments, the trainer's best-state copy) -- about 2.3 GB on Amazon
  Clothing with 4096-d image + 1024-d text features; False keeps one fixed copy.
- The trainer drops gradients with ``set_to_none``, so Adam leaves the graph-only parameters
  untouched on non-refresh batches (torch 1.5's zero-filled gradients still moved them by momentum).
- The suite's sampler (every training pair once per epoch) replaces the reference's
  ``batch_size`` random users per step; the regulariser divides by the actual batch size.

Measured (``train_raw_features`` on, CPU, 1 thread; ru_maxrss of a fresh process, which holds 282
MB with the data alone): synthetic-clothing (1,969 users, 1,152 items, 4096-d v + 384-d t) 0.45
s/epoch, peak RSS 528 MB; TikTok (9,308 users, 6,710 items; the largest set run) peak RSS 739 MB
over a 30-epoch run (6.1 s/epoch).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark import losses
from benchmark.data import Dataset
from benchmark.graphs import propagate, sym_normalise_sparse
from benchmark.model import Batch, id_embeddings
from benchmark.registry import register

from ._item_graphs import ItemGraphRecommender, combine, spmm


@register("lattice")
class LATTICE(ItemGraphRecommender):
    train_defaults = {"lr": 5e-4, "batch_size": 1024, "lr_decay": 0.96}
    # MMRec's search for LATTICE within 12 points (lr 5e-3 dropped)
    grid = {"lr": [5e-4, 1e-4, 1e-3], "reg_weight": [1e-5, 0.0, 1e-4, 1e-3]}

    @dataclass(frozen=True)
    class Config:
        dim: int = 64  # ID embedding size (= feat_embed_dim)
        n_layers: int = 2  # LightGCN layers on D^-1 (A + I) (weight_size [64, 64])
        item_layers: int = 1  # item-graph convolutions (n_layers in the reference)
        knn_k: int = 10  # neighbours kept per row in every kNN graph
        lambda_coeff: float = 0.9  # weight of the original graph in the mix
        reg_weight: float = 1e-5  # decay on 0.5 * sum sq of final u, i+, j- / batch
        train_raw_features: bool = True  # raw feature tables trainable (reference; ~4x their memory)

    def __init__(self, data: Dataset, config: Config) -> None:
        super().__init__(
            data, config, feat_dim=config.dim, knn_k=config.knn_k, train_raw_features=config.train_raw_features
        )
        self.user, self.item = id_embeddings(data.n_users, data.n_items, config.dim)
        m = len(self.modalities)
        self.modal_weight = nn.Parameter(torch.full((m,), 1.0 / m))

    def build_item_graphs(self) -> dict[str, Tensor]:
        w = torch.softmax(self.modal_weight, dim=0)
        feats = self.feats.transformed()
        learned = sym_normalise_sparse(
            combine((w[k], self.learned_knn(feats[m])) for k, m in enumerate(self.modalities))
        )
        original = combine((w[k], self.original(m)) for k, m in enumerate(self.modalities))
        lam = self.config.lambda_coeff
        return {"item": combine([(1.0 - lam, learned), (lam, original)])}

    def forward(self) -> tuple[Tensor, Tensor]:
        a_item = self.item_graphs()["item"]
        h = self.item.weight
        for _ in range(self.config.item_layers):
            h = spmm(a_item, h)
        out = propagate(self.adj, torch.cat([self.user.weight, self.item.weight]), self.config.n_layers)
        users, items = out[: self.n_users], out[self.n_users :]
        return users, items + F.normalize(h, dim=1)

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        users, items = self.forward()
        u, i, j = users[batch.users], items[batch.pos], items[batch.neg]
        rank = losses.bpr_dot(u, i, j)
        reg = self.config.reg_weight * losses.half_sq(u, i, j)
        return {"loss": rank + reg, "bpr": rank, "reg": reg}

    def describe(self) -> dict[str, object]:
        w = torch.softmax(self.modal_weight.detach(), dim=0).cpu().tolist()
        return {
            "modalities": list(self.modalities),
            "modality_weights": w,
            "train_raw_features": self.config.train_raw_features,
            "graph_refresh": "first training batch of each epoch (with gradient), and before each evaluation",
        }
