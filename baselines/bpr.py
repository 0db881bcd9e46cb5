"""BPR-MF (Rendle et al., UAI'09): matrix factorisation trained with the BPR loss.

    s_ui = <e_u, e_i>,   L = -mean log sigmoid(s_ui - s_uj) + reg_weight * EmbLoss(e_u, e_i, e_j)

EmbLoss is MMRec's (sum of Frobenius norms / batch). Xavier-uniform initialisation.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from benchmark import losses
from benchmark.data import Dataset
from benchmark.model import Batch, Recommender, id_embeddings
from benchmark.registry import register


@register("bpr")
class BPRMF(Recommender):
    # MMRec's reg axis around the default, and the lr every MMRec model is searched around (<= 12 points;
    # the first point runs to the end and sets the bar the pruner holds the others to)
    grid = {"lr": [1e-3, 5e-4, 5e-3], "reg_weight": [1e-5, 1e-4, 1e-3, 1e-2]}

    @dataclass(frozen=True)
    class Config:
        dim: int = 64  # embedding size
        reg_weight: float = 1e-5  # weight of MMRec's EmbLoss on the batch embeddings

    def __init__(self, data: Dataset, config: Config) -> None:
        super().__init__(data, config)
        self.user, self.item = id_embeddings(data.n_users, data.n_items, config.dim)

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        u, i, j = self.user(batch.users), self.item(batch.pos), self.item(batch.neg)
        rank = losses.bpr_dot(u, i, j)
        reg = self.config.reg_weight * losses.emb_loss(u, i, j)
        return {"loss": rank + reg, "bpr": rank, "reg": reg}

    def score(self, users: Tensor) -> Tensor:
        return self.user(users) @ self.item.weight.T
