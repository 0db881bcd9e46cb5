"""BM3 (Zhou et al., WWW'23): bootstrapped latent views, no negatives (enoche/BM3 = MMRec ``bm3.py``).

Tables: user / item ID embeddings E_u, E_i (xavier-uniform), raw item features X^m per modality m,
a projector Lin_m(x) = W_m x + b_m (F_m -> d, xavier-normal W_m) per modality, and ONE predictor
P(x) = W_p x + b_p (d -> d, xavier-normal W_p) shared by users, items and every modality.

    A_hat = D^-1/2 A D^-1/2                   bipartite user-item training graph, no self loops
    [H_u; H_i'] = mean_{k=0..L} A_hat^k [E_u; E_i]                     LightGCN layer mean
    H_i = H_i' + E_i                                                    item residual (ID row again)
    h_i^m = Lin_m(x_i^m)                                                modality vectors (no graph)

    target view  t(x) = sg(dropout_p(x))        (1/(1-p) rescaled; no target network, no EMA)
    online view  o(x) = P(x)
    C(a, b) = 1 - mean_batch cos(a, b)

On the batch's training pairs (u, i):

    L_rec   = C(P h_u, t(h_i)) + C(P h_i, t(h_u))
    L_align = sum_m C(P h_i^m, t(h_i))                                  (the same t(h_i) as in L_rec)
    L_mask  = sum_m C(P h_i^m, t(h_i^m))
    L = L_rec + cl_weight (L_align + L_mask) + reg_weight (||H_u||_F + ||H_i||_F) / I

with the regulariser on the WHOLE pre-predictor tables at every step (MMRec's EmbLoss of the two
tables). Score s_ui = <P h_u, P h_i>; the modality vectors never enter the score; no dropout.

Defaults (reference code / MMRec trainer): d = 64 (embedding_size = feat_embed_dim), L = 1,
dropout 0.5, reg_weight 0.1 (the README's best on Baby), cl_weight 2.0 (a constant of the code,
in neither its grid nor its README), Adam lr 1e-3, batch 2048 pairs, every training pair once per
epoch, raw feature tables fine-tuned (``from_pretrained(freeze=False)``).

Decisions and deviations:
- Modalities: the reference adds a text and an image term when present and skips an absent one;
  here L_align and L_mask sum over whatever modalities the dataset has (Amazon / synthetic
  v + t, TikTok v + a), one projector each; ``describe()`` records them.
- Negatives: none, as the reference (``use_neg_sampling: False``). The suite's batches carry
  (u, i+, j-) with j- drawn by the shared sampler; ``batch.neg`` is ignored. The sampler walks
  every training pair once per epoch in a fresh order, as MMRec's loader (users weighted by degree).
- Regulariser divisor: MMRec's EmbLoss divides by the rows of the LAST tensor it is given (there
  ``reg_loss(u, i)``: the number of items); this suite's `benchmark.losses.emb_loss` divides by the
  FIRST. The call below therefore passes (items, users): the same sum of norms over I.
- Batch rows only: the reference projects and predicts every item's modality vectors (and predicts
  the whole user and item tables) and then indexes the batch; here the projector and predictor
  run on the batch's distinct users / items only and are then expanded to the batch: same numbers,
  without the (I x F_m x d) projection per step.
- Dropout masks: the reference drops out the whole tables and then indexes, so a user or item
  that occurs twice in a batch gets the same mask twice. Dropping out the distinct batch rows and
  expanding keeps exactly that (the random stream differs from the reference's, the distribution
  does not). The targets are dropped out in train mode only; the reference's ``F.dropout`` is
  always on, but its loss is only ever called in training. The draw is written out (uniform <
  1 - p, kept entries scaled by 1 / (1 - p): ``F.dropout``'s law), a third of torch's CPU
  Bernoulli time (`dropped_rows`).
- Logged terms: ``rec``, ``align`` and ``mask`` (the last two times cl_weight) and ``reg`` (times
  reg_weight) add up to ``loss``.
- Graph: `benchmark.graphs.adjacency_operator` (no degree epsilon; the reference adds 1e-7 to the
  degrees, a 1e-7 relative difference on connected nodes; isolated nodes have zero rows either way).
- ``train_raw_features`` (default True = reference; named as in LATTICE and FREEDOM): the raw
  tables are parameters. Memory: the index's backward writes a dense (I x F_m) gradient every
  step (the reference's full projection does too), and Adam keeps two moments, so about 4x the
  raw tables (Amazon 4096-d image: ~0.4 GB -> ~1.5 GB with the trainer's best-state copy); False
  keeps one fixed buffer.

Measured (``python -m benchmark.study.speed --per-model tiktok``, CPU, 1 thread): 0.78-0.88 s of
CPU per epoch, 1.7x LightGCN's (3 layers). A profile of a step puts about a third in full-table
work (the raw tables' dense gradients, the regulariser's norms, Adam) and a seventh in the graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark import losses
from benchmark.data import Dataset
from benchmark.graphs import adjacency_operator, propagate
from benchmark.model import Batch, DotProductRecommender, id_embeddings
from benchmark.registry import register

from ._item_graphs import ModalFeatures


def cosine_loss(online: Tensor, target: Tensor) -> Tensor:
    """C(a, b) = 1 - mean over the batch of cos(a_b, b_b) (in float32 under autocast)."""
    return 1.0 - F.cosine_similarity(online.float(), target.float(), dim=-1).mean()


def dropped_rows(rows: Tensor, inverse: Tensor, p: float, training: bool) -> Tensor:
    """The target view of distinct rows, expanded to the batch: sg(dropout_p(rows))[inverse].
    A row repeated in the batch keeps one mask, as when the whole table is dropped out.

    Inverted dropout written out (keep an entry when a float32 uniform is below 1 - p, scale the
    kept ones by 1 / (1 - p)), the law of ``F.dropout``: with torch's CPU Bernoulli draw the four
    target views took about 5 ms of a 30 ms TikTok step, three times as long as this."""
    with torch.no_grad():
        if not training or p == 0.0:
            return rows[inverse]
        scale = torch.rand(rows.shape, device=rows.device).lt_(1.0 - p).mul_(1.0 / (1.0 - p))
        return (rows * scale)[inverse]


@register("bm3")
class BM3(DotProductRecommender):
    requires_features = True
    train_defaults = {"lr": 1e-3, "batch_size": 2048}
    # The reference searches n_layers {1,2} x dropout {0.3,0.5} x reg_weight {0.1,0.01} at a fixed
    # lr; here lr joins, so one of the two own knobs goes. Dropout stays: it is BM3's own knob (the
    # only thing that makes the target view differ from the online one), while n_layers is the
    # LightGCN depth every graph model shares; the README's best keeps 1 layer on Baby and Sports,
    # and on Elec, the one set where it moved to 2, dropout moved too (to 0.3).
    grid = {"lr": [1e-3, 5e-4], "reg_weight": [0.1, 0.01], "dropout": [0.5, 0.3]}

    @dataclass(frozen=True)
    class Config:
        dim: int = 64  # ID embedding and modality projection size (embedding_size = feat_embed_dim)
        n_layers: int = 1  # LightGCN layers on D^-1/2 A D^-1/2 (layer mean over 0..L)
        dropout: float = 0.5  # dropout rate p of the target views
        reg_weight: float = 0.1  # EmbLoss weight on the whole pre-predictor tables (README: Baby 0.1)
        cl_weight: float = 2.0  # weight of L_align + L_mask (a constant of the reference code)
        train_raw_features: bool = True  # raw feature tables trainable (reference; ~4x their memory)

    def __init__(self, data: Dataset, config: Config) -> None:
        super().__init__(data, config)
        if not 0.0 <= config.dropout < 1.0:
            raise ValueError(f"bm3: dropout must be in [0, 1), got {config.dropout}")
        d = config.dim
        self.modalities: tuple[str, ...] = tuple(data.modalities)
        self.user, self.item = id_embeddings(data.n_users, data.n_items, d)
        self.predictor = nn.Linear(d, d)
        nn.init.xavier_normal_(self.predictor.weight)  # the bias keeps torch's default, as the reference
        self.feats = ModalFeatures(data, d, config.train_raw_features)
        for m in self.modalities:
            nn.init.xavier_normal_(self.feats.trs[m].weight)
        self.adj = adjacency_operator(data.train)

    def embeddings(self) -> tuple[Tensor, Tensor]:
        """The pre-predictor tables H_u, H_i (layer mean; the item rows plus their ID row)."""
        out = propagate(self.adj, torch.cat([self.user.weight, self.item.weight]), self.config.n_layers)
        # split, not two slices: its backward is one cat, a slice's a zero-filled full table each
        users, items = out.split([self.n_users, self.n_items])
        return users, items + self.item.weight

    def forward(self) -> tuple[Tensor, Tensor]:
        # the scoring tables: both sides through the predictor, no dropout
        users, items = self.embeddings()
        return self.predictor(users), self.predictor(items)

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        cfg = self.config
        p, training = cfg.dropout, self.training
        users, u_inv = torch.unique(batch.users, return_inverse=True)
        items, i_inv = torch.unique(batch.pos, return_inverse=True)
        all_u, all_i = self.embeddings()
        h_u, h_i = all_u[users], all_i[items]
        t_u, t_i = dropped_rows(h_u, u_inv, p, training), dropped_rows(h_i, i_inv, p, training)
        rec = cosine_loss(self.predictor(h_u)[u_inv], t_i) + cosine_loss(self.predictor(h_i)[i_inv], t_u)
        align = mask = torch.zeros((), device=h_u.device)
        for m in self.modalities:
            h_m = self.feats.trs[m](self.feats.table(m)[items])
            o_m = self.predictor(h_m)[i_inv]
            align = align + cosine_loss(o_m, t_i)
            mask = mask + cosine_loss(o_m, dropped_rows(h_m, i_inv, p, training))
        # (items, users): MMRec's EmbLoss divides by the last table's rows (I), ours by the first's
        reg = cfg.reg_weight * losses.emb_loss(all_i, all_u)
        align, mask = cfg.cl_weight * align, cfg.cl_weight * mask
        return {"loss": rec + align + mask + reg, "rec": rec, "align": align, "mask": mask, "reg": reg}

    def describe(self) -> dict[str, object]:
        return {"modalities": list(self.modalities), "train_raw_features": self.config.train_raw_features}
