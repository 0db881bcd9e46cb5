"""VBPR (He & McAuley, AAAI'16), as ported by MMRec for Table 2.

    item vector  q_i = [gamma_i ; W f_i + b],   f_i = concat of the item's raw features
    user vector  p_u = [gamma_u ; theta_u]        (one 2d-wide table)
    s_ui = <p_u, q_i>,   L = BPR + reg_weight * EmbLoss(p_u, q_i, q_j)

Deviations from the original paper, following MMRec: no global / user / item / visual biases,
and ``f_i`` concatenates every modality the dataset has (Amazon: text and visual; TikTok: visual
and acoustic) instead of the image feature alone. Xavier-uniform ID tables, xavier-normal W.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from benchmark import losses
from benchmark.data import Dataset
from benchmark.model import Batch, Recommender
from benchmark.registry import register


@register("vbpr")
class VBPR(Recommender):
    requires_features = True
    # MMRec's search for VBPR within 12 points (1e-3 dropped), and lr
    grid = {"lr": [1e-3, 5e-3], "reg_weight": [1e-4, 1e-2, 0.1, 1.0, 2.0, 1e-5]}

    @dataclass(frozen=True)
    class Config:
        dim: int = 64  # size of each half (ID part, content part)
        reg_weight: float = 1e-4  # EmbLoss weight on the final batch vectors (MMRec grid 2.0 .. 1e-5)

    def __init__(self, data: Dataset, config: Config) -> None:
        super().__init__(data, config)
        d = config.dim
        self.modalities = data.modalities
        feats = np.concatenate([data.features[m] for m in self.modalities], axis=1)
        self.register_buffer("feats", torch.from_numpy(feats), persistent=False)
        self.user = nn.Embedding(data.n_users, 2 * d)
        self.item = nn.Embedding(data.n_items, d)
        self.proj = nn.Linear(feats.shape[1], d)
        nn.init.xavier_uniform_(self.user.weight)
        nn.init.xavier_uniform_(self.item.weight)
        nn.init.xavier_normal_(self.proj.weight)

    def item_vectors(self) -> Tensor:
        return torch.cat([self.item.weight, self.proj(self.feats)], dim=1)

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        items = self.item_vectors()
        u, i, j = self.user(batch.users), items[batch.pos], items[batch.neg]
        rank = losses.bpr_dot(u, i, j)
        reg = self.config.reg_weight * losses.emb_loss(u, i, j)
        return {"loss": rank + reg, "bpr": rank, "reg": reg}

    def scoring_state(self) -> Tensor:
        return self.item_vectors()

    def score(self, users: Tensor) -> Tensor:
        return self.user(users) @ self.cached_scoring_state().T

    def describe(self) -> dict[str, object]:
        return {"modalities": list(self.modalities)}
