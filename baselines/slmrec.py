"""SLMRec (Tao et al., TMM'22): self-supervised learning for multimedia recommendation.

Encoder (one LightGCN per branch b in {id} + modalities, all on the same graph):

    A_hat = D^-1/2 A D^-1/2                          (bipartite, training edges, no self loops)
    x_i^m = W_m normalize(f_i^m) + b_m               (per modality, 64-d)
    H^b = mean_{k=0..L} A_hat^k [E_u ; X^b]          X^id = E_i, X^m = x^m; E_u shared by branches
    z_u = Lin_u([h_u^id ; h_u^m ...]),  z_i = Lin_i([h_i^id ; h_i^m ...])
    s_ui = <z_u, z_i>

Main loss, in-batch InfoNCE (no sampled negatives, as in the source):

    L_main = CE( normalize(z_u) normalize(z_i)^T / temp , diag )

Self-supervised task (``ssl_task``):

* ``fac`` (fine and coarse, default), on the batch's positive items, raw dot products:
      a_1 = g_1(h_i^id),  L = CE(a_1 t_1(h_i^{m_1})^T / ssl_temp, diag)       (fine: id vs m_1)
      a_k = g_k(a_{k-1}), L += CE(a_k t_k(h_i^{m_k})^T / ssl_temp, diag)     (coarse: k = 2, 3)
  with the modalities taken in the source's order visual, acoustic, text among those present;
  every step's heads are Linear(64, 64) except a coarse text step's, Linear(64, 32).
* ``fd`` (feature dropout): two views of the whole encoder with dropout p after every
  propagation layer; InfoNCE (normalised, ssl_temp) between the views for the batch's users and
  for its positive items.
* ``fm`` (feature masking): two views, each zeroing the item input of a different branch drawn
  uniformly from {id} + modalities; same InfoNCE as ``fd``.

    L = L_main + ssl_alpha * L_ssl,      Adam weight_decay 1e-4 (the source's ``reg`` is unused)

Decisions and deviations:

* Learning rate 1e-3, not the official conf's 0.01: 1e-3 is MMRec's default and the centre of
  its SLMRec grid, and the lr every other Table 2 model starts from; with in-batch InfoNCE at
  temp 0.2 and Adam, 0.01 tends to oscillate. Batch 2048, weight decay 1e-4 as the source.
* Any 1..3 modalities: the fine step pairs the ID branch with the first present modality of
  (visual, acoustic, text); each further present modality adds one coarse step chained on the
  previous anchor. Amazon (v, t): id-v fine, then text at 32-d (the source also passes the
  anchor through the skipped audio step's 64x64 map; two linear maps in a row equal one, so the
  function class is the same). TikTok (v, a): id-v fine, then acoustic at 64-d. A single
  modality m: id-m only.
* FM draws its two masked branches with torch's RNG (the source uses numpy's global RNG).
* Propagation: the layer mean as one operator (`benchmark.graphs.propagate`, fused sparse
  multiply-adds; A_hat is symmetric, so its backward is A_hat @ grad); the fd task's dropout after
  every layer keeps the layer loop with `benchmark.graphs.symmetric_spmm`. The CSR indices are
  int32 (`baselines.mmgcn.int32_csr`). The in-batch cross-entropies (main InfoNCE, FAC, fd / fm)
  go through one fused operator, `in_batch_ce`. Same maths as the plain layer loop and
  ``F.cross_entropy``: tests/test_slmrec.py checks the loss and every gradient against it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.data import Dataset
from benchmark.graphs import SparseOperator, normalised_adjacency, propagate, symmetric_spmm
from benchmark.model import Batch, DotProductRecommender, id_embeddings
from benchmark.registry import register

from ._modal_branches import modal_projections
from .mmgcn import int32_csr


class _InBatchCE(torch.autograd.Function):
    """L = mean_i [ lse_i - S_ii ],  S = (a / t) b^T,  lse_i = log(sum_j exp S_ij + sum_k exp E_ik)

    which is ``F.cross_entropy(cat([a b^T, t E], 1) / t, arange(n))`` with optional extra logits
    E (already divided by t; MMGCL's hard negatives). With P = exp(S - lse), Q = exp(E - lse):
        dL/da = (P b - b) / (n t),   dL/db = (P^T (a / t) - a / t) / n,   dL/dE = Q / n
    The n x n block is written once (the product), turned into P by torch's softmax kernel
    (``torch.exp`` on far-negative logits is ten times slower) and read by the two backward
    products: no temperature division, NLL scatter or log-softmax backward over n x n. The
    softmax gives the log-sum-exp too: with m_i = max_j S_ij at j*, lse_i = m_i - log P_ij*
    (P_ij* >= 1/n never underflows)."""

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, temperature: float, extra: Tensor | None) -> Tensor:  # type: ignore[override]
        a_t = a / temperature
        s = a_t @ b.T
        m, arg = s.max(1, keepdim=True)
        p = torch.softmax(s, 1)
        del s
        lse = m - p.gather(1, arg).log()
        q = None
        if extra is not None:
            lse_all = torch.logaddexp(lse, torch.logsumexp(extra, 1, keepdim=True))
            p.mul_((lse - lse_all).exp())
            q = (extra - lse_all).exp()
            lse = lse_all
        loss = (lse.squeeze(1) - torch.linalg.vecdot(a_t, b)).mean()
        ctx.save_for_backward(p, a_t, b, q)
        ctx.temperature = temperature
        return loss

    @staticmethod
    def backward(ctx, g: Tensor) -> tuple[Tensor | None, Tensor | None, None, Tensor | None]:  # type: ignore[override]
        p, a_t, b, q = ctx.saved_tensors
        c = g / p.shape[0]
        da = db = de = None
        if ctx.needs_input_grad[0]:
            da = (p @ b).sub_(b).mul_(c / ctx.temperature)
        if ctx.needs_input_grad[1]:
            db = (p.T @ a_t).sub_(a_t).mul_(c)
        if q is not None and ctx.needs_input_grad[3]:
            de = q * c
        return da, db, None, de


def in_batch_ce(a: Tensor, b: Tensor, temperature: float, extra: Tensor | None = None) -> Tensor:
    """``F.cross_entropy(a @ b.T / temperature, arange(n))`` (with ``extra`` logits appended as
    further columns, already divided by the temperature), one fused operator."""
    return _InBatchCE.apply(a, b, temperature, extra)


def info_nce(a: Tensor, b: Tensor, temperature: float) -> Tensor:
    """`benchmark.losses.info_nce` (in-batch InfoNCE of L2-normalised rows) through `in_batch_ce`."""
    return in_batch_ce(F.normalize(a, dim=-1), F.normalize(b, dim=-1), temperature)


# the source's fine-to-coarse order of the modalities in the FAC chain
FAC_ORDER = ("v", "a", "t")
SSL_TASKS = ("fac", "fd", "fm")


@register("slmrec")
class SLMRec(DotProductRecommender):
    requires_features = True
    train_defaults = {"lr": 1e-3, "weight_decay": 1e-4, "batch_size": 2048}
    # MMRec's search for SLMRec within 12 points: lr, the SSL weight (its regulariser; its ``reg``
    # axis is unused by the model) and the SSL temperature
    grid = {"lr": [1e-3, 1e-2], "ssl_alpha": [0.1, 0.01, 0.5], "ssl_temp": [0.2, 0.5]}

    @dataclass(frozen=True)
    class Config:
        dim: int = 64  # embedding size of every branch
        n_layers: int = 3  # LightGCN layers per branch
        temp: float = 0.2  # temperature of the main in-batch InfoNCE
        ssl_task: str = "fac"  # self-supervised task: fac (fine and coarse), fd (feature dropout), fm (feature masking)
        ssl_alpha: float = 0.1  # weight of the self-supervised loss
        ssl_temp: float = 0.2  # temperature of the self-supervised InfoNCE
        dropout: float = 0.3  # feature dropout rate of the fd task

    def __init__(self, data: Dataset, config: Config) -> None:
        super().__init__(data, config)
        if config.ssl_task not in SSL_TASKS:
            raise ValueError(f"slmrec: ssl_task must be one of {SSL_TASKS}, got {config.ssl_task!r}")
        d = config.dim
        self.modalities = data.modalities
        self.user, self.item = id_embeddings(data.n_users, data.n_items, d)
        self.dense = modal_projections(self, data, d)
        n_branches = 1 + len(self.modalities)
        self.fuse_user = nn.Linear(n_branches * d, d)
        self.fuse_item = nn.Linear(n_branches * d, d)
        nn.init.xavier_uniform_(self.fuse_user.weight)
        nn.init.xavier_uniform_(self.fuse_item.weight)
        self.adj = SparseOperator(int32_csr(normalised_adjacency(data.train)), symmetric=True)

        # FAC heads: the anchor chain (id side) and the target head of each modality step
        self.fac_steps = [m for m in FAC_ORDER if m in self.modalities]
        self.fac_anchor = nn.ModuleDict()
        self.fac_target = nn.ModuleDict()
        if config.ssl_task == "fac":
            for m in self.fac_steps:
                out = d // 2 if m == "t" and m != self.fac_steps[0] else d
                self.fac_anchor[m] = nn.Linear(d, out)
                self.fac_target[m] = nn.Linear(d, out)
                nn.init.xavier_uniform_(self.fac_anchor[m].weight)
                nn.init.xavier_uniform_(self.fac_target[m].weight)

    # ----- encoder ----------------------------------------------------------------------
    def item_inputs(self) -> list[Tensor]:
        """Item input of each branch: the ID table, then one projection per modality."""
        return [self.item.weight] + [self.dense[m](getattr(self, f"feat_{m}")) for m in self.modalities]

    def propagate(self, items: Tensor, dropout: float = 0.0) -> tuple[Tensor, Tensor]:
        h = torch.cat([self.user.weight, items])
        if dropout > 0 and self.training:
            out = h
            for _ in range(self.config.n_layers):
                h = F.dropout(symmetric_spmm(self.adj.a, h), dropout, True)
                out = out + h
            out = out / (self.config.n_layers + 1)
        else:  # the layer mean as one operator (fused multiply-adds, no per-layer tensors kept)
            out = propagate(self.adj, h, self.config.n_layers)
        return out[: self.n_users], out[self.n_users :]

    def branches(self, dropout: float = 0.0, masked: int | None = None) -> list[tuple[Tensor, Tensor]]:
        """(users, items) of each branch; ``masked`` zeroes that branch's item input (fm)."""
        inputs = self.item_inputs()
        if masked is not None:
            inputs[masked] = torch.zeros_like(inputs[masked])
        return [self.propagate(x, dropout) for x in inputs]

    def fuse(self, branches: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
        return (
            self.fuse_user(torch.cat([u for u, _ in branches], dim=1)),
            self.fuse_item(torch.cat([i for _, i in branches], dim=1)),
        )

    def forward(self) -> tuple[Tensor, Tensor]:
        return self.fuse(self.branches())

    # ----- losses -----------------------------------------------------------------------
    def fac(self, branches: list[tuple[Tensor, Tensor]], items: Tensor) -> Tensor:
        t = self.config.ssl_temp
        anchor = branches[0][1][items]
        total = anchor.new_zeros(())
        for m in self.fac_steps:
            anchor = self.fac_anchor[m](anchor)
            target = self.fac_target[m](branches[1 + self.modalities.index(m)][1][items])
            total = total + in_batch_ce(anchor, target, t)
        return total

    def two_views(self, users: Tensor, items: Tensor, view_a: dict, view_b: dict) -> Tensor:
        t = self.config.ssl_temp
        ua, ia = self.fuse(self.branches(**view_a))
        ub, ib = self.fuse(self.branches(**view_b))
        return info_nce(ua[users], ub[users], t) + info_nce(ia[items], ib[items], t)

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        cfg = self.config
        branches = self.branches()
        users, items = self.fuse(branches)
        main = info_nce(users[batch.users], items[batch.pos], cfg.temp)
        if cfg.ssl_task == "fac":
            ssl = self.fac(branches, batch.pos)
        elif cfg.ssl_task == "fd":
            view = {"dropout": cfg.dropout}
            ssl = self.two_views(batch.users, batch.pos, view, view)
        else:
            a, b = torch.randperm(1 + len(self.modalities), device=self.device)[:2].tolist()
            ssl = self.two_views(batch.users, batch.pos, {"masked": a}, {"masked": b})
        return {"loss": main + cfg.ssl_alpha * ssl, "infonce": main, "ssl": ssl}

    def describe(self) -> dict[str, object]:
        return {
            "modalities": list(self.modalities),
            "ssl_task": self.config.ssl_task,
            "fac_steps": ["id"] + self.fac_steps if self.config.ssl_task == "fac" else [],
        }
