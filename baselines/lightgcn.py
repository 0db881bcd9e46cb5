"""LightGCN (He et al., SIGIR'20).

    A_hat = D^-1/2 A D^-1/2  (bipartite, no self loops)
    E^(0) = [E_u; E_i],  E^(k+1) = A_hat E^(k),  E = mean_{k=0..L} E^(k)
    s_ui = <E_u, E_i>,  L = BPR + reg_weight * EmbLoss(E^(0)_u, E^(0)_i, E^(0)_j)

Defaults follow the official code (L = 3, lr 1e-3, reg 1e-4, d = 64, batch 2048) with MMRec's
EmbLoss on the ego embeddings and xavier-uniform initialisation. Propagation is one
sparse product per layer through `benchmark.graphs.SparseOperator` (faster here than PyG's
``LGConv``; figures in ``python -m benchmark.study.speed``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from benchmark import losses
from benchmark.data import Dataset
from benchmark.graphs import adjacency_operator, propagate
from benchmark.model import Batch, DotProductRecommender
from benchmark.registry import register


@register("lightgcn")
class LightGCN(DotProductRecommender):
    # MMRec's search for LightGCN within 12 points (every other reg value, 2 or 3 layers), and lr
    grid = {"lr": [1e-3, 5e-3], "reg_weight": [1e-4, 1e-2, 1e-6], "n_layers": [3, 2]}

    @dataclass(frozen=True)
    class Config:
        dim: int = 64  # embedding size
        n_layers: int = 3  # propagation layers
        reg_weight: float = 1e-4  # EmbLoss weight on the ego embeddings of the batch

    def __init__(self, data: Dataset, config: Config) -> None:
        super().__init__(data, config)
        self.embedding = nn.Embedding(data.n_users + data.n_items, config.dim)
        nn.init.xavier_uniform_(self.embedding.weight)
        self.adj = adjacency_operator(data.train)

    def forward(self) -> tuple[Tensor, Tensor]:
        out = propagate(self.adj, self.embedding.weight, self.config.n_layers)
        return out[: self.n_users], out[self.n_users :]

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        # one gather per table from the joint (users + items) rows: every separate slice or
        # index op costs a zero-filled full-table gradient in backward
        rows = torch.cat([batch.users, self.n_users + batch.pos, self.n_users + batch.neg.reshape(-1)])
        sizes = [len(batch.users), len(batch.pos), batch.neg.numel()]
        out = propagate(self.adj, self.embedding.weight, self.config.n_layers)
        u, i, j = out[rows].split(sizes)
        rank = losses.bpr_dot(u, i, j.view(*batch.neg.shape, -1))
        ego_u, ego_i, ego_j = self.embedding.weight[rows].split(sizes)
        reg = self.config.reg_weight * losses.emb_loss(ego_u, ego_i, ego_j)
        return {"loss": rank + reg, "bpr": rank, "reg": reg}
