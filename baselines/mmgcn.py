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
sparse (CSR, int32 indices) form, so the mean aggregation is one sparse product per layer and no
per-edge message tensor or dense U x I matrix is built. A training step's loss reads only the
batch's rows of Z, so the last layer runs on those rows alone (its conv reassociated as
(D^-1 A X_{L-1})[rows] W_L); the row normalisation of the input and the combiner's concatenation
are fused (`unit_rows_cat`, `concat_linear`). tests/test_mmgcn.py checks loss and gradients
against the plain every-node computation. Regularisation is Wei et al.'s mean of
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


class _UnitRowsCat(torch.autograd.Function):
    """y = normalize(rows of [a ; b]) = x / max(|x|, eps) in one pass, without building the
    concatenation first. Backward, with n = max(|x|, eps) per row:
        dx = (g - y <g, y>) / n    where |x| > eps,      dx = g / eps  otherwise
    (the gradient F.normalize's autograd graph gives, from two passes instead of its six)."""

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor) -> Tensor:  # type: ignore[override]
        x = torch.cat([a, b])
        norm = torch.linalg.vector_norm(x, dim=1, keepdim=True)
        inv = norm.clamp_min(_EPS).reciprocal_()
        y = x.mul_(inv)
        ctx.save_for_backward(y, inv, norm > _EPS)
        ctx.n_a = a.shape[0]
        return y

    @staticmethod
    def backward(ctx, g: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        y, inv, above = ctx.saved_tensors
        dot = torch.linalg.vecdot(g, y, dim=1).unsqueeze(1).mul_(above)
        dx = torch.addcmul(g, y, dot, value=-1.0).mul_(inv)
        return dx[: ctx.n_a], dx[ctx.n_a :]


_EPS = 1e-12  # F.normalize's default floor on the row norm


def int32_csr(a: Tensor) -> Tensor:
    """The same CSR matrix with int32 row pointers and columns. torch hands CSR products to MKL
    with 32-bit indices and converts int64 ones on every call: on TikTok's graph that copy was
    half the cost of a 64-wide product. (Belongs in `benchmark.graphs.to_torch_csr`.)"""
    if a.crow_indices().dtype == torch.int32:
        return a
    return torch.sparse_csr_tensor(
        a.crow_indices().to(torch.int32), a.col_indices().to(torch.int32), a.values(), a.shape, check_invariants=False
    )


def int32_operator(op: SparseOperator) -> SparseOperator:
    """`int32_csr` on a `SparseOperator`'s matrix and its stored transpose."""
    op.a = int32_csr(op.a)
    if not op.symmetric:
        op.a_t = int32_csr(op.a_t)
    return op


def unit_rows_cat(a: Tensor, b: Tensor) -> Tensor:
    """L2-normalised rows of [a ; b] (as ``F.normalize(torch.cat([a, b]), dim=1)``)."""
    return _UnitRowsCat.apply(a, b)


def concat_linear(lin: nn.Linear, h: Tensor, x: Tensor) -> Tensor:
    """lin([h ; x]) as h W_h^T + x W_x^T + bias: two products into one output, no N x (w + d)
    concatenation forward nor its split backward."""
    w_h, w_x = lin.weight.split([h.shape[1], x.shape[1]], dim=1)
    return torch.addmm(torch.addmm(lin.bias, h, w_h.t()), x, w_x.t())


class _ModalityGCN(nn.Module):
    """The L-layer graph network of one modality (preference table, projection, layers)."""

    def __init__(
        self, n_users: int, feat_dim: int, dim: int, dim_latent: int | None, n_layers: int, frozen: bool
    ) -> None:
        super().__init__()
        d_in = dim_latent or feat_dim
        self.proj = nn.Linear(feat_dim, dim_latent) if dim_latent else None
        self.preference = nn.Parameter(nn.init.xavier_normal_(torch.empty(n_users, d_in)), requires_grad=not frozen)
        widths = [d_in] + [dim] * (n_layers - 1)
        self.conv = nn.ParameterList(nn.Parameter(nn.init.xavier_normal_(torch.empty(w, w))) for w in widths)
        self.lin = nn.ModuleList(nn.Linear(w, dim) for w in widths)
        self.comb = nn.ModuleList(nn.Linear(w + dim, dim) for w in widths)
        for lin in self.lin:
            nn.init.xavier_normal_(lin.weight)
        nn.init.xavier_normal_(self.comb[0].weight)

    def forward(self, adj: SparseOperator, feats: Tensor, ids: Tensor, rows: Tensor | None = None) -> Tensor:
        """X^m_L for every node, or only for the nodes ``rows`` (duplicates allowed).

        With ``rows`` the last layer runs on those rows alone: its conv is reassociated as
        (D^-1 A X_{L-1})[rows] W_L, equal to (D^-1 A (X_{L-1} W_L))[rows], so its dense
        products, LeakyReLUs and combiner cost B rows instead of U + I; a step's loss reads
        only its batch's rows (about 1 node in 8 on TikTok)."""
        items = self.proj(feats) if self.proj is not None else feats
        x = unit_rows_cat(self.preference, items)
        last = len(self.conv) - 1
        for layer, (w, lin, comb) in enumerate(zip(self.conv, self.lin, self.comb)):
            if rows is not None and layer == last:
                h = F.leaky_relu(adj(x)[rows] @ w)
                x, ids = x[rows], ids[rows]
            else:
                h = F.leaky_relu(adj(x @ w))
            x_hat = F.leaky_relu(lin(x)) + ids
            x = F.leaky_relu(concat_linear(comb, h, x_hat))
        return x


@register("mmgcn")
class MMGCN(DotProductRecommender):
    requires_features = True
    # official README for Kwai / TikTok (MovieLens: lr 1e-4, reg 1e-4); Adam without weight decay
    train_defaults = {"lr": 5e-4, "batch_size": 1024, "weight_decay": 0.0}
    # MMRec's search for MMGCN within 12 points (lr 5e-3 and 1e-2, reg 0 and 1e-5 dropped)
    grid = {"lr": [5e-4, 1e-4, 1e-3], "reg_weight": [0.1, 1e-2, 1e-3, 1e-4]}

    @dataclass(frozen=True)
    class Config:
        dim: int = 64  # ID embedding and output size
        dim_latent: int = 256  # visual projected to this; other modalities only if wider
        n_layers: int = 3  # graph layers per modality (reference hard-codes 3)
        reg_weight: float = 0.1  # weight of the mean-of-squares regulariser (MovieLens: 1e-4)
        frozen_id: bool = False  # True: ID and preference tables stay at init (published code)

    def __init__(self, data: Dataset, config: Config) -> None:
        super().__init__(data, config)
        if config.n_layers < 1:
            raise ValueError(f"mmgcn: n_layers must be >= 1, got {config.n_layers}")
        self.modalities = data.modalities
        self.id_embedding = nn.Parameter(
            nn.init.xavier_normal_(torch.empty(data.n_users + data.n_items, config.dim)),
            requires_grad=not config.frozen_id,
        )
        self.gcn = nn.ModuleDict()
        self.input_dims: dict[str, int] = {}
        for m in self.modalities:
            x = torch.tensor(data.features[m])  # a copy: the dataset's arrays are read-only
            latent = config.dim_latent if (m == "v" or x.shape[1] > config.dim_latent) else None
            self.input_dims[m] = latent or x.shape[1]
            self.register_buffer(f"feat_{m}", x, persistent=False)
            self.gcn[m] = _ModalityGCN(data.n_users, x.shape[1], config.dim, latent, config.n_layers, config.frozen_id)
        # D^-1 A: the mean over each node's neighbours, as one sparse product
        self.adj = int32_operator(adjacency_operator(data.train, kind="row"))

    def nodes(self, rows: Tensor | None = None) -> Tensor:
        """The final (U+I) x d' node table, or its rows ``rows``."""
        out = [self.gcn[m](self.adj, getattr(self, f"feat_{m}"), self.id_embedding, rows) for m in self.modalities]
        return out[0] if len(out) == 1 else torch.stack(out).mean(0)

    def forward(self) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        z = self.nodes()
        return z[: self.n_users], z[self.n_users :]

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        # only the batch's rows of the final layer: users, positives, negatives
        item_rows = self.n_users + torch.cat([batch.pos.reshape(-1), batch.neg.reshape(-1)])
        rows = torch.cat([batch.users, item_rows])
        sizes = [len(batch.users), batch.pos.numel(), batch.neg.numel()]
        u, i, j = self.nodes(rows).split(sizes)
        rank = losses.bpr_dot(u, i.view(*batch.pos.shape, -1), j.view(*batch.neg.shape, -1))
        reg = losses.mean_sq(self.id_embedding[batch.users], self.id_embedding[item_rows])
        if "v" in self.gcn:
            reg = reg + losses.mean_sq(self.gcn["v"].preference)
        reg = self.config.reg_weight * reg
        return {"loss": rank + reg, "bpr": rank, "reg": reg}

    def describe(self) -> dict[str, object]:
        return {
            "modalities": list(self.modalities),
            "input_dims": dict(self.input_dims),
            "frozen_id": self.config.frozen_id,
        }
