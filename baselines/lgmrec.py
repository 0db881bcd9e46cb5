"""LGMRec (Guo et al., AAAI'24): local and global graph learning for multimodal recommendation
(georgeguo-cn/LGMRec ``models/lgmrec.py`` after commit d918d5a = MMRec ``lgmrec.py``).

Tables: user / item ID embeddings E_u, E_i (xavier-uniform); raw item features X^m (I x F_m) per
modality m, frozen; per modality a projection W_m (F_m x d, no bias) and hyperedge embeddings V_m
(F_m x H), both xavier-uniform (as the reference's ``nn.init.xavier_uniform_(torch.zeros(F, .))``).
Graphs: A_hat = D^-1/2 A D^-1/2 of the bipartite training graph (no self loops), the raw
interaction matrix R (U x I) and its row mean D_u^-1 R.

    CGE    E^c = mean_{l=0..L_ui} A_hat^l [E_u; E_i]                         LightGCN layer mean
    MGE_m  f_i = x_i^m W_m,  f_u = mean_{i in N(u)} f_i  (= D_u^-1 R f)
           M_m = A_hat^{L_mm} [f_u; f_i]                                      LAST layer, not the mean
    local  = E^c + sum_m normalize(M_m)                                       normalize: rows, L2
    GHE_m  logits  Lg_i = X^m V_m (I x H),  Lg_u = R Lg_i (U x H: a SUM over the user's items)
           training:  H_* = dropout_{1-keep}(gumbel_softmax(Lg_*, tau, soft))
           eval:      H_* = softmax(Lg_* / tau)          (gumbel_at_eval: the training draw, no dropout)
           e_i <- E^c_items;  n_hyper_layer times:  Z = H_i^T e_i (H x d);  e_i <- H_i Z;  e_u <- H_u Z
           G_m = [e_u; e_i]
    global = sum_m G_m
    final  = local + alpha normalize(global),     s_ui = <final_u, final_i>

    L = BPR(u, i+, j-) + cl_weight L_HCL + reg_weight (||u||_F + ||i+||_F + ||j-||_F) / B
    L_HCL = sum_{(a, b)} [ sum_{k in batch} -log softmax_{v in users}(cos(G_a,u_k, G_b,v) / tau)[u_k]
                         + sum_{k in batch} -log softmax_{v in items}(cos(G_a,i_k, G_b,v) / tau)[i_k] ]

with u, i+, j- the batch rows of ``final`` (the regulariser on the non-squared norms, MMRec's
EmbLoss). Every iteration of the hypergraph loop reads the previous iteration's item output (the
first one the CGE items); the user rows read the last Z only. The dropout mask is drawn once per
forward pass and shared by the iterations, as the reference.

Defaults (official Baby yaml = MMRec ``LGMRec.yaml``; MMRec trainer): d = 64 (embedding_size =
feat_embed_dim), L_ui = 2, L_mm = 2, n_hyper_layer 1, H = hyper_num 4, keep_rate 0.5, alpha 0.3,
cl_weight 1e-4, reg_weight 1e-6, tau 0.2 (a constant of the code, also the InfoNCE temperature),
Adam lr 1e-3, batch 2048 pairs, every training pair once per epoch, one uniform negative each.

Decisions and deviations:
- The fixed code. Until commit d918d5a (2024-07-18, after AAAI) the text branch wrote its
  gumbel-softmaxed user-hyperedge matrix into the *visual* variable, so the visual GHE used the
  text users' assignments and the text GHE used its raw, un-softmaxed user logits. The paper's
  runs (and its logs) had that bug; this file implements the fix only: each modality's own
  user-hyperedge matrix, both sides softmaxed.
- Deterministic eval. The reference draws Gumbel noise in ``full_sort_predict`` too (dropout is
  off there, the model is in eval mode), so its rankings are random. Here eval uses the noise-free
  soft assignment softmax(logits / tau) -- the mode of the noisy one's argmax, and the same
  temperature -- so a state dict scores the same every time. ``gumbel_at_eval=True`` restores the
  reference's noisy eval (one draw per evaluation, cached with the scoring tables; the reference
  draws once per batch of users).
- Modalities: the reference hard-wires image + text (and silently falls back to CGE alone when one
  is missing). Here every sum over m runs over whatever modalities the dataset has, and L_HCL
  sums over all pairs (a, b), a before b in the order visual, text, acoustic, with a the anchor
  (batch rows) and b the all-rows table: image + text is exactly the reference (anchor v, all t),
  TikTok (v + a) contrasts v against a, three modalities give three pairs. With ONE modality
  (Amazon Scientific: text only) there is no pair and L_HCL is 0; local and global keep their
  single term.
- L_HCL is SUMMED over the batch (the reference's ``.sum()``), not averaged, so its effective
  weight grows with the batch size: cl_weight 1e-4 at B = 2048 is ~0.2 per unit of mean InfoNCE.
  Kept as the reference. The denominators run over all users / all items of the b table, the
  positive included (log-sum-exp over a (B x U) and a (B x I) logit block; the reference takes the
  exp without a max shift, which |cos / tau| <= 5 makes equal); a batch user or item repeated in
  the batch counts once per occurrence.
- Logged terms: ``bpr``, ``hcl`` (times cl_weight) and ``reg`` (times reg_weight) add up to ``loss``.
- Several negatives per positive (``n_negatives`` > 1) are scored as BPR against each; the
  regulariser still divides by B (the reference divides by its negatives' rows = B at one each).
- Graphs: `benchmark.graphs.adjacency_operator` and the row mean D_u^-1 R carry no 1e-7 degree
  epsilon (the reference's, a 1e-7 relative difference on connected nodes; a user without
  training items has a zero row either way).
- Batch rows only: the reference forms the whole final table and then indexes the batch; the loss
  here combines (normalises, sums) only the batch's rows of CGE, M_m and G_m (every step of
  ``final`` is row-wise: same numbers). The graph branches themselves run over all rows, as they
  must (Z needs every item; L_HCL every row of the b tables).
- L_HCL's denominators are computed once per distinct batch user / positive item and weighted by
  its count (`CountedLogSumExp`: the anchor row, its positive and its denominator are the same at
  every occurrence), strip by strip with the gradients formed in the same sweep: same numbers.
  On TikTok a 2048-pair batch holds ~700 distinct users and ~1,300 distinct items.
- The Gumbel noise and the dropout are drawn on [H_u; H_i] of a modality at once (one draw of the
  same law; the random stream differs from the reference's). The graphs' CSR indices are int32
  (`baselines.mmgcn.int32_operator`: MKL's index type, no conversion per product).

Cost per step: the LightGCN layers; per modality L_mm products of A_hat with a (U+I) x d table,
two R products, X^m W_m and X^m V_m over all items (the reference's; 6 GFLOP at Clothing's 4096-d
image features); per modality pair three GEMMs over (distinct users x U) and (distinct items x I)
for the InfoNCE denominators, which dominate. Measured (``python -m benchmark.study.speed
--per-model tiktok``, CPU, 1 thread): 4.15 s of CPU per epoch against LightGCN's 0.46 (9.0x;
the dense products alone put its floor at 3.1x LightGCN's, nearly all in the InfoNCE GEMMs).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark import losses
from benchmark.data import MODALITIES, Dataset
from benchmark.graphs import SparseOperator, adjacency_operator, fp32, normalise, propagate, to_torch_csr
from benchmark.model import Batch, DotProductRecommender, id_embeddings
from benchmark.registry import register

from .mmgcn import int32_operator


def hcl_pairs(modalities: tuple[str, ...]) -> list[tuple[str, str]]:
    """The (anchor, all-rows) modality pairs of L_HCL: every pair once, the anchor the earlier in
    the order visual, text, acoustic (so image + text gives the reference's (v, t))."""
    order = [m for m in MODALITIES if m in modalities]
    return list(combinations(order, 2))


class CountedLogSumExp(torch.autograd.Function):
    """The InfoNCE denominators of distinct anchors and their gradient (bfloat16 inputs in float32):

        L = sum_k c_k log sum_v exp(<q_k, t_v> / tau)        q: (n x d) anchors, t: (N x d) table,
                                                              both unit rows; c_k: anchor k's count
        dL/dq_k = (c_k / tau) sum_v p_kv t_v,   dL/dt_v = (1 / tau) sum_k c_k p_kv q_k,
        p_kv = softmax_v(<q_k, t_v> / tau)

    A strip of ``rows`` anchors at a time: one (N x rows) block of exponentials turns into the loss
    and both gradients (three GEMMs, one exp), so no block is kept for backward, which only scales
    the stored gradients by the upstream scalar (the pattern of `AllItemsLogSumExp` in
    ``_item_graphs``). The exponent is shifted by 1/tau, the bound of a cosine over tau, so it
    never overflows (the reference exponentiates unshifted: equal in exact arithmetic; a row
    underflows only if all its cosines are below 1 - 87 tau, i.e. never for tau > 0.023).
    """

    @staticmethod
    def forward(ctx, q: Tensor, t: Tensor, counts: Tensor, tau: float, rows: int) -> Tensor:  # type: ignore[override]
        need_grad = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        with torch.autocast(q.device.type, enabled=False):
            q, t, counts = fp32(q), fp32(t), fp32(counts)
            n, big = q.shape[0], t.shape[0]
            buf = q.new_empty(big * min(rows, n))
            total = q.new_zeros(())
            grad_q = torch.empty_like(q) if need_grad else None
            grad_t = torch.zeros_like(t) if need_grad else None
            for s in range(0, n, rows):
                qs = q[s : s + rows]
                r = qs.shape[0]
                # transposed (N x rows) strips: t @ q^T ran faster than q @ t^T (see AllItemsLogSumExp)
                e = torch.mm(t, qs.T / tau, out=buf[: big * r].view(big, r)).sub_(1.0 / tau).exp_()
                z = e.sum(0)
                total += (counts[s : s + r] * (z.log() + 1.0 / tau)).sum()
                if need_grad:
                    e.mul_(counts[s : s + r] / (z * tau))  # c_k p_kv / tau
                    torch.mm(e.T, t, out=grad_q[s : s + r])
                    grad_t.addmm_(e, qs)
        ctx.save_for_backward(grad_q, grad_t)
        return total

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor, None, None, None]:  # type: ignore[override]
        grad_q, grad_t = ctx.saved_tensors
        return grad * grad_q, grad * grad_t, None, None, None


def summed_info_nce(anchor: Tensor, table: Tensor, target: Tensor, counts: Tensor, tau: float) -> Tensor:
    """sum_k c_k (-log softmax_v(cos(anchor_k, table_v) / tau)[target_k]): each distinct anchor
    against every row of ``table`` (unit rows already), its positive ``table[target_k]``, counted
    ``counts[k]`` times (as often as it occurs in the batch: a repeated user or item has the same
    anchor row, positive and denominator each time)."""
    a = F.normalize(anchor, dim=1)
    positive = (counts * (a * table[target]).sum(1)).sum() / tau
    return CountedLogSumExp.apply(a, table, counts, tau, 512) - positive


@register("lgmrec")
class LGMRec(DotProductRecommender):
    requires_features = True
    train_defaults = {"lr": 1e-3, "batch_size": 2048}
    # From the official yamls' commented-out grids. The regulariser searched is cl_weight, not
    # reg_weight: summed over a batch of 2048, the HCL term at 1e-4 is already several times BPR
    # (~3.7 against 0.6 at the start on TikTok; 1e-3 would make it ~60x), while reg_weight 1e-6 on
    # non-squared norms / B is ~1e-7 of BPR (and acts on the CGE part alone: the other parts of
    # `final` are unit rows), still negligible at 1e-4. So the default and the two decades below
    # it on the reference's grid. The own knob is alpha, the weight of the global (hypergraph)
    # view, the paper's central knob: 0.3 (Baby) and 0.6 (Sports), the two official values
    # (Clothing's 0.2 comes with a 64-edge configuration). lr 5e-4 added, since the suite's
    # sampler and splits are not MMRec's.
    grid = {"lr": [1e-3, 5e-4], "cl_weight": [1e-4, 1e-5, 1e-6], "alpha": [0.3, 0.6]}

    @dataclass(frozen=True)
    class Config:
        dim: int = 64  # ID and modality embedding size (embedding_size = feat_embed_dim)
        n_ui_layers: int = 2  # LightGCN layers of the CGE (layer mean)
        n_mm_layers: int = 2  # A_hat products of the MGE (last layer kept)
        n_hyper_layer: int = 1  # hypergraph iterations of the GHE (>= 1)
        hyper_num: int = 4  # hyperedges H per modality
        keep_rate: float = 0.5  # 1 - dropout rate on the hyperedge assignments (training only)
        alpha: float = 0.3  # weight of the normalised global (hypergraph) embedding
        cl_weight: float = 1e-4  # weight of L_HCL (summed over the batch)
        reg_weight: float = 1e-6  # EmbLoss weight on the batch's final u, i+, j- rows
        tau: float = 0.2  # Gumbel-softmax and InfoNCE temperature (a constant of the reference)
        gumbel_at_eval: bool = False  # draw Gumbel noise at eval too (reference; random scores)

    def __init__(self, data: Dataset, config: Config) -> None:
        super().__init__(data, config)
        if config.n_hyper_layer < 1 or config.hyper_num < 1:
            raise ValueError(f"lgmrec: n_hyper_layer and hyper_num must be >= 1, got {config}")
        if not 0.0 < config.keep_rate <= 1.0:
            raise ValueError(f"lgmrec: keep_rate must be in (0, 1], got {config.keep_rate}")
        if config.tau <= 0.0:
            raise ValueError(f"lgmrec: tau must be positive, got {config.tau}")
        d, h = config.dim, config.hyper_num
        self.modalities: tuple[str, ...] = tuple(data.modalities)
        self.pairs = hcl_pairs(self.modalities)
        self.user, self.item = id_embeddings(data.n_users, data.n_items, d)
        self.trs = nn.ParameterDict()  # W_m
        self.hyper = nn.ParameterDict()  # V_m
        for m in self.modalities:
            x = torch.from_numpy(np.array(data.features[m], dtype=np.float32))
            self.register_buffer(f"raw_{m}", x, persistent=False)
            self.trs[m] = nn.Parameter(nn.init.xavier_uniform_(torch.empty(x.shape[1], d)))
            self.hyper[m] = nn.Parameter(nn.init.xavier_uniform_(torch.empty(x.shape[1], h)))
        self.drop = nn.Dropout(p=1.0 - config.keep_rate)
        self.adj = int32_operator(adjacency_operator(data.train))
        train = sp.csr_matrix(data.train, dtype=np.float32, copy=True)
        self.r_sum = int32_operator(SparseOperator(to_torch_csr(train), symmetric=False))  # R
        self.r_mean = int32_operator(SparseOperator(to_torch_csr(normalise(train, "row")), symmetric=False))

    def raw(self, m: str) -> Tensor:
        return getattr(self, f"raw_{m}")

    def assignments(self, logits: Tensor) -> Tensor:
        """Soft hyperedge assignments of hyperedge logits (each row sums to 1 before dropout)."""
        tau = self.config.tau
        if self.training or self.config.gumbel_at_eval:
            h = F.gumbel_softmax(logits.float(), tau=tau, hard=False, dim=1)
        else:
            h = torch.softmax(logits.float() / tau, dim=1)
        return self.drop(h)  # nn.Dropout: identity in eval mode

    def hyperedges(self, m: str) -> tuple[Tensor, Tensor]:
        """(H_u, H_i) of modality m: assignments of Lg_u = R X^m V_m and Lg_i = X^m V_m."""
        lg_i = self.raw(m) @ self.hyper[m]
        h = self.assignments(torch.cat([self.r_sum(lg_i), lg_i]))
        users, items = h.split([self.n_users, self.n_items])
        return users, items

    def mge(self, m: str) -> Tensor:
        """M_m = A_hat^{L_mm} [f_u; f_i], f_i = x_i W_m, f_u the mean of the user's f_i."""
        f_i = self.raw(m) @ self.trs[m]
        x = torch.cat([self.r_mean(f_i), f_i])
        for _ in range(self.config.n_mm_layers):
            x = self.adj(x)
        return x

    def ghe(self, m: str, cge_items: Tensor) -> tuple[Tensor, Tensor]:
        """(user rows, item rows) of G_m: every iteration reads the previous item output."""
        h_u, h_i = self.hyperedges(m)  # one dropout mask for all iterations
        e_i = cge_items
        for _ in range(self.config.n_hyper_layer):
            z = h_i.T @ e_i  # H x d hyperedge embeddings
            e_i = h_i @ z
        return h_u @ z, e_i

    def branches(self) -> tuple[Tensor, list[Tensor], list[tuple[Tensor, Tensor]]]:
        """(CGE (U+I) x d, [M_m], [(G_m users, G_m items)]) over the modalities."""
        cge = propagate(self.adj, torch.cat([self.user.weight, self.item.weight]), self.config.n_ui_layers)
        mge = [self.mge(m) for m in self.modalities]
        ghe = [self.ghe(m, cge[self.n_users :]) for m in self.modalities]
        return cge, mge, ghe

    def combine(self, cge: Tensor, mge: list[Tensor], ghe: list[Tensor]) -> Tensor:
        """final = CGE + sum_m normalize(M_m) + alpha normalize(sum_m G_m), on any set of rows
        (every operation is row-wise)."""
        local = cge + sum(F.normalize(x, dim=1) for x in mge)
        return local + self.config.alpha * F.normalize(sum(ghe), dim=1)

    def forward(self) -> tuple[Tensor, Tensor]:
        cge, mge, ghe = self.branches()
        final = self.combine(cge, mge, [torch.cat(g) for g in ghe])
        users, items = final.split([self.n_users, self.n_items])
        return users, items

    def hcl(self, ghe: list[tuple[Tensor, Tensor]], users: Tensor, pos: Tensor) -> Tensor:
        """L_HCL of the batch: per pair, batch users against all users and batch positives
        against all items, summed over the batch (0 with a single modality)."""
        tau = self.config.tau
        total = ghe[0][0].new_zeros((), dtype=torch.float32)
        if not self.pairs:
            return total
        index = {m: k for k, m in enumerate(self.modalities)}
        users, u_counts = torch.unique(users, return_counts=True)
        items, i_counts = torch.unique(pos, return_counts=True)
        for a, b in self.pairs:
            (a_u, a_i), (b_u, b_i) = ghe[index[a]], ghe[index[b]]
            total = total + summed_info_nce(a_u[users], F.normalize(b_u, dim=1), users, u_counts.float(), tau)
            total = total + summed_info_nce(a_i[items], F.normalize(b_i, dim=1), items, i_counts.float(), tau)
        return total

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        cfg, n_u = self.config, self.n_users
        cge, mge, ghe = self.branches()
        # the final rows of the batch alone (the reference forms the whole final table, then
        # indexes it: same rows, without the full-table normalisations)
        items = torch.cat([batch.pos, batch.neg.reshape(-1)])
        rows = torch.cat([batch.users, n_u + items])
        g_rows = [torch.cat([g_u[batch.users], g_i[items]]) for g_u, g_i in ghe]
        final = self.combine(cge[rows], [x[rows] for x in mge], g_rows)
        u, i, j = final.split([len(batch.users), len(batch.pos), batch.neg.numel()])
        rank = losses.bpr_dot(u, i, j.view(*batch.neg.shape, -1))
        reg = cfg.reg_weight * losses.emb_loss(u, i, j)
        hcl = cfg.cl_weight * self.hcl(ghe, batch.users, batch.pos)
        return {"loss": rank + hcl + reg, "bpr": rank, "hcl": hcl, "reg": reg}

    def describe(self) -> dict[str, object]:
        return {
            "modalities": list(self.modalities),
            "hcl_pairs": [list(p) for p in self.pairs],
            "eval_assignments": "gumbel_softmax (reference)" if self.config.gumbel_at_eval else "softmax(logits/tau)",
        }
