"""MMGCN (Wei et al., ACM MM'19): one graph network per modality over the user-item graph.

Per modality m, with the shared ID table E (U+I x d), the user preference table P^m and the item
features F^m (visual: projected by Linear(dim -> 256) first):

    X^m_0 = L2-normalise rows of [P^m ; F^m]                                  (U+I x d_m)
    for l = 1..L (L = 3):
        h     = LeakyReLU( D^-1 A (X^m_{l-1} W_l) )       mean over neighbours of x_j W_l
        x_hat = LeakyReLU( Lin_l(X^m_{l-1}) ) + E         the ID is added at every layer
        X^m_l = LeakyReLU( G_l([h ; x_hat]) )             concatenation combiner, out dim d
    Z = mean_m X^m_L,   s_ui = <Z_u, Z_i>
    L = BPR + reg_weight * ( mean(E_u^2) + mean(E_{i,j}^2) + mean((P^v)^2) )

A is the bipartite training graph, both directions, no self loops; D^-1 A is its row-normalised
sparse (CSR) form, so the mean aggregation is one sparse product per layer and no
per-edge message tensor or dense U x I matrix is built. Regularisation is Wei et al.'s mean of
squared entries (ID rows of the batch users and of their positive and negative items, plus the
whole *visual* preference table, as the reference code does; nothing is added when the dataset
has no visual features).

Decisions and deviations (see docs/baselines.md section 3):

- ``frozen_id``: the published code (official and MMRec) creates E and every P^m with
  ``requires_grad`` and then moves them with ``.cuda()``/``.to()``, so they are not registered
  parameters and stay at their random init. The paper means them to be trained: the default
  trains them; ``frozen_id=True`` keeps them at their init (they still enter the regulariser,
  as a constant, exactly as in the reference) to mimic the published numbers.
- Input widths: the visual modality always goes through Linear(dim -> 256) (``dim_latent``), as
  in the reference (which does so even for TikTok's 128-d visual features). The reference feeds
  the other modalities raw (e.g. MMRec's 384-d text), which makes layer 1's conv weight
  feat x feat; here any other modality wider than ``dim_latent`` is projected down to
  ``dim_latent`` too (Amazon's 384-d text -> 256), narrower ones (TikTok's 128-d acoustic)
  enter raw. ``describe()`` records each modality's input width.
- Layers: three, as hard-coded in the reference (its ``num_layer`` flag is unused); exposed as
  ``n_layers`` with default 3. The reference's ``concat='False'`` string is truthy, so the
  concatenation combiner runs; that is the only combiner here.
- Initialisation as the reference: E, P^m, W_l, Lin_l and G_1 weights xavier-normal (for a
  (rows x cols) table, std sqrt(2 / (rows + cols))), G_2..G_L and the input projections keep
  torch's default Linear init. No bias in W_l.
- Training items are masked to -inf by the shared evaluator (the reference's 1e-5 is a bug).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark import losses
from benchmark.data import Dataset
from benchmark.graphs import SparseOperator, adjacency_operator
from benchmark.model import Batch, DotProductRecommender
from benchmark.registry import register


class _ModalityGCN(nn.Module):
    """The L-layer graph network of one modality (preference table, projection, layers)."""

    def __init__(self, n_users: int, feat_dim: int, dim: int, dim_latent: int | None,
                 n_layers: int, frozen: bool) -> None:
        super().__init__()
        d_in = dim_latent or feat_dim
        self.proj = nn.Linear(feat_dim, dim_latent) if dim_latent else None
        self.preference = nn.Parameter(nn.init.xavier_normal_(torch.empty(n_users, d_in)),
                                       requires_grad=not frozen)
        widths = [d_in] + [dim] * (n_layers - 1)
        self.conv = nn.ParameterList(
            nn.Parameter(nn.init.xavier_normal_(torch.empty(w, w))) for w in widths)
        self.lin = nn.ModuleList(nn.Linear(w, dim) for w in widths)
        self.comb = nn.ModuleList(nn.Linear(w + dim, dim) for w in widths)
        for lin in self.lin:
            nn.init.xavier_normal_(lin.weight)
        nn.init.xavier_normal_(self.comb[0].weight)

    def forward(self, adj: SparseOperator, feats: Tensor, ids: Tensor) -> Tensor:
        items = self.proj(feats) if self.proj is not None else feats
        x = F.normalize(torch.cat([self.preference, items]), dim=1)
        for w, lin, comb in zip(self.conv, self.lin, self.comb):
            h = F.leaky_relu(adj(x @ w))
            x_hat = F.leaky_relu(lin(x)) + ids
            x = F.leaky_relu(comb(torch.cat([h, x_hat], dim=1)))
        return x


@register("mmgcn")
class MMGCN(DotProductRecommender):
    requires_features = True
    # official README for Kwai / TikTok (MovieLens: lr 1e-4, reg 1e-4); Adam without weight decay
    train_defaults = {"lr": 5e-4, "batch_size": 1024, "weight_decay": 0.0}
    # MMRec's search for MMGCN
    grid = {"reg_weight": [0.0, 1e-5, 1e-4, 1e-3, 1e-2, 0.1], "lr": [1e-4, 5e-4, 1e-3, 5e-3, 1e-2]}

    @dataclass(frozen=True)
    class Config:
        dim: int = 64              # ID embedding and output size
        dim_latent: int = 256      # visual projected to this; other modalities only if wider
        n_layers: int = 3          # graph layers per modality (reference hard-codes 3)
        reg_weight: float = 0.1    # weight of the mean-of-squares regulariser (MovieLens: 1e-4)
        frozen_id: bool = False    # True: ID and preference tables stay at init (published code)

    def __init__(self, data: Dataset, config: Config) -> None:
        super().__init__(data, config)
        if config.n_layers < 1:
            raise ValueError(f"mmgcn: n_layers must be >= 1, got {config.n_layers}")
        self.modalities = data.modalities
        self.id_embedding = nn.Parameter(
            nn.init.xavier_normal_(torch.empty(data.n_users + data.n_items, config.dim)),
            requires_grad=not config.frozen_id)
        self.gcn = nn.ModuleDict()
        self.input_dims: dict[str, int] = {}
        for m in self.modalities:
            x = torch.tensor(data.features[m])  # a copy: the dataset's arrays are read-only
            latent = config.dim_latent if (m == "v" or x.shape[1] > config.dim_latent) else None
            self.input_dims[m] = latent or x.shape[1]
            self.register_buffer(f"feat_{m}", x, persistent=False)
            self.gcn[m] = _ModalityGCN(data.n_users, x.shape[1], config.dim, latent,
                                       config.n_layers, config.frozen_id)
        # D^-1 A: the mean over each node's neighbours, as one sparse product
        self.adj = adjacency_operator(data.train, kind="row")

    def nodes(self) -> Tensor:
        """The final (U+I) x d' node table."""
        out = [self.gcn[m](self.adj, getattr(self, f"feat_{m}"), self.id_embedding)
               for m in self.modalities]
        return torch.stack(out).mean(0)

    def forward(self) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        z = self.nodes()
        return z[: self.n_users], z[self.n_users:]

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        users, items = self.forward()
        u, i, j = users[batch.users], items[batch.pos], items[batch.neg]
        rank = losses.bpr_dot(u, i, j)
        item_rows = self.n_users + torch.cat([batch.pos.reshape(-1), batch.neg.reshape(-1)])
        reg = losses.mean_sq(self.id_embedding[batch.users], self.id_embedding[item_rows])
        if "v" in self.gcn:
            reg = reg + losses.mean_sq(self.gcn["v"].preference)
        reg = self.config.reg_weight * reg
        return {"loss": rank + reg, "bpr": rank, "reg": reg}

    def describe(self) -> dict[str, object]:
        return {"modalities": list(self.modalities), "input_dims": dict(self.input_dims),
                "frozen_id": self.config.frozen_id}
