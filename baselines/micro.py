"""MICRO (Zhang et al., TKDE'22): per-modality latent item graphs, attention fusion, contrastive
alignment of each modality with the fused view. Extends LATTICE.

Per modality m (raw item features X^m, trainable by default):

    A^m      = (1 - lambda) D~^-1/2 S~^m D~^-1/2 + lambda D^-1/2 S^m D^-1/2
               S~^m = topk_k(cos(W_m X^m + b_m)) (learned),  S^m = topk_k(cos(X^m)) (fixed, cached)
    h_m      = (A^m)^{L_i} E_item                                   item-graph conv, no weights
    a_{i,m}  = softmax_m( w^T tanh(W h_{i,m} + b) )                  attention, shared over m
    h_i      = sum_m a_{i,m} h_{i,m}
    E        = mean_{l=0..L} (D^-1 (A + I))^l [E_user; E_item]      LightGCN, row-normalised + loops
    e_u = E_u,   e_i = E_i + h_i / ||h_i||,   s_ui = <e_u, e_i>
    C(z, h)  = mean_i -log( e^{cos(z_i,h_i)/tau} /
                            (sum_j e^{cos(z_i,h_j)/tau} + sum_{j != i} e^{cos(z_i,z_j)/tau}) )
    L = BPR + reg_weight * 0.5 (||e_u||^2 + ||e_i||^2 + ||e_j||^2) / B
            + contrast_weight * sum_m C(h_m, h)

C runs over all items (MICRO's ``batched_contrastive_loss``: one direction, modality view as the
anchor), ``contrast_chunk`` anchor rows per strip.

Defaults (reference ``codes/utility/parser.py``): d = 64, k = 10, lambda = 0.9, L_i = 1, L = 2,
decay 1e-5, loss_ratio 0.03, tau 0.5 (hard-coded there), lr 5e-4, batch 1024,
lr x 0.96^(epoch/50) (``train_defaults``). Modalities: whatever the dataset has; ``describe()``.

Decisions and deviations (shared graph code in ``baselines/_item_graphs.py``):
- Sparse kNN graphs built blockwise, vector degree scaling (the reference's ``sparse=1`` path, but
  its dense I x I cosine matrix and Python loop over I*k entries are gone).
- Graph refresh: first training batch of each epoch, with gradient through that batch only,
  detached afterwards (as the reference); rebuilt without gradient before every evaluation (as the
  reference's test()).
- The contrastive term's denominators and their gradient come from one custom autograd function
  (``AllItemsLogSumExp``): the reference keeps every chunk's (4096 x I) exp-similarity blocks for
  backward (2 per modality summed over chunks = I x I each); here one (I x contrast_chunk) strip
  is alive at a time, the gradient is formed in the forward sweeps (analytically, the softmax-
  weighted keys) and the symmetric z-z similarities are formed once per pair: 5 I^2 d multiply-
  adds per modality, against 6 for autograd over kept blocks. Same values and gradients
  (tests/test_infonce.py checks them against the earlier chunked, checkpointed autograd version).
- ``train_raw_features`` as in LATTICE (default True, the reference; memory 4-5x the raw tables).
- The suite's sampler (every training pair once per epoch) replaces the reference's random users.

Measured (``train_raw_features`` on, CPU, 1 thread; ru_maxrss of a fresh process, which holds 282
MB with the data alone): synthetic-clothing (1,969 users, 1,152 items, 4096-d v + 384-d t) 1.43
s/epoch, peak RSS 555 MB; TikTok (9,308 users, 6,710 items; the largest set run) peak RSS 831 MB
over a 1-epoch run. Speed (``python -m benchmark.study.speed --per-model tiktok``, 1 thread): 66x
LightGCN's epoch (was 280x before `AllItemsLogSumExp`), 95% of a step in the all-items InfoNCE.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from benchmark import losses
from benchmark.data import Dataset
from benchmark.graphs import propagate, sym_normalise_sparse
from benchmark.model import Batch, id_embeddings
from benchmark.registry import register

from ._item_graphs import ItemGraphRecommender, ModalityAttention, chunked_contrastive, combine, spmm


@register("micro")
class MICRO(ItemGraphRecommender):
    train_defaults = {"lr": 5e-4, "batch_size": 1024, "lr_decay": 0.96}
    # MMRec's LATTICE-family lr axis and the decay around the default, and the contrastive weight
    # at the default and above it (the source publishes no search)
    grid = {"lr": [5e-4, 1e-4, 1e-3], "reg_weight": [1e-5, 1e-3], "contrast_weight": [0.03, 0.1]}

    @dataclass(frozen=True)
    class Config:
        dim: int = 64  # ID embedding size (= embed_size of the trs layers)
        n_layers: int = 2  # LightGCN layers on D^-1 (A + I) (weight_size [64, 64])
        item_layers: int = 1  # item-graph convolutions per modality (``layers``)
        knn_k: int = 10  # neighbours kept per row in every kNN graph
        lambda_coeff: float = 0.9  # weight of the original graph in each modality's mix
        reg_weight: float = 1e-5  # decay on 0.5 * sum sq of final u, i+, j- / batch
        contrast_weight: float = 0.03  # loss_ratio: weight of the modality-vs-fused InfoNCE
        tau: float = 0.5  # InfoNCE temperature (hard-coded in the reference)
        contrast_chunk: int = 256  # anchor rows per strip of the all-items InfoNCE (I x chunk floats)
        train_raw_features: bool = True  # raw feature tables trainable (reference; ~4x their memory)

    def __init__(self, data: Dataset, config: Config) -> None:
        super().__init__(
            data, config, feat_dim=config.dim, knn_k=config.knn_k, train_raw_features=config.train_raw_features
        )
        self.user, self.item = id_embeddings(data.n_users, data.n_items, config.dim)
        self.attention = ModalityAttention(config.dim)

    def build_item_graphs(self) -> dict[str, Tensor]:
        lam = self.config.lambda_coeff
        feats = self.feats.transformed()
        return {
            m: combine([(1.0 - lam, sym_normalise_sparse(self.learned_knn(feats[m]))), (lam, self.original(m))])
            for m in self.modalities
        }

    def forward(self) -> tuple[Tensor, Tensor, list[Tensor], Tensor]:
        graphs = self.item_graphs()
        hs = []
        for m in self.modalities:
            h = self.item.weight
            for _ in range(self.config.item_layers):
                h = spmm(graphs[m], h)
            hs.append(h)
        fused, _ = self.attention(hs)
        out = propagate(self.adj, torch.cat([self.user.weight, self.item.weight]), self.config.n_layers)
        users, items = out[: self.n_users], out[self.n_users :]
        return users, items + F.normalize(fused, dim=1), hs, fused

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        users, items, hs, fused = self.forward()
        c = self.config
        u, i, j = users[batch.users], items[batch.pos], items[batch.neg]
        rank = losses.bpr_dot(u, i, j)
        reg = c.reg_weight * losses.half_sq(u, i, j)
        contrast = c.contrast_weight * sum(chunked_contrastive(h, fused, c.tau, c.contrast_chunk) for h in hs)
        return {"loss": rank + reg + contrast, "bpr": rank, "reg": reg, "contrast": contrast}

    def describe(self) -> dict[str, object]:
        return {
            "modalities": list(self.modalities),
            "train_raw_features": self.config.train_raw_features,
            "graph_refresh": "first training batch of each epoch (with gradient), and before each evaluation",
        }
