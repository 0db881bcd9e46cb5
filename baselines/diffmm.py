"""DiffMM (Jiang et al., ACM MM'24): per-modality diffusion models generate a user-item graph that
feeds a multi-modal GCN with cross-modal contrastive views (reference: HKUDS/DiffMM).

Notation: R = binary training matrix (U x I); A_hat = D^-1/2 (A + I) D^-1/2 of the bipartite
graph of R (self loops included); E_u, E_i = ID tables (xavier); X^m = fixed raw features;
f_m = LeakyReLU_0.2(X^m W_m) (``trans`` 0, W_m xavier, no bias) or Linear(X^m) (``trans`` 1);
w = softmax(omega), omega starting uniform.

Diffusion (per modality m, its own denoiser and its own Adam, lr ``diffusion_lr``), T = 5 steps:

    var_t   = linspace(s n_min, s n_max, T)  (s = 0.1: 1e-5 .. 2e-3),  abar'_t = 1 - var_t
    beta_0  = 1e-4 (fixed),  beta_t = min(1 - abar'_t / abar'_{t-1}, 0.999)  (t >= 1)
    abar_t  = prod_{s <= t} (1 - beta_s),   SNR(t) = abar_t / (1 - abar_t)
    x_0     = the user's binary row of R,   x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps,  t ~ U{0..4}
    x^_0    = g_m(x_t, t) = W2 tanh(W1 [drop_0.5(x_t) ; Lin_10(sincos_10(t))] + b1) + b2
    L_m     = mean_b [ (SNR(t-1) - SNR(t)) mean_i (x_0 - x^_0)^2   (weight 1 at t = 0)
                      + e_loss mean_d (x^_0 f_m - x_0 E_i)^2 ]        (f_m, E_i detached)

  Rebuild: 5 deterministic reverse steps from the clean x_0: x <- c1_t g_m(x, t) + c2_t x for
  t = 4..0 (posterior-mean coefficients; c1_0 = 1, c2_0 = 0), then the top ``rebuild_k`` items
  of each user: A_m = those U k edges, A^_m = D^-1/2 (A_m + I) D^-1/2 on the (U+I) nodes, then
  each entry kept with probability ``keep_rate`` (values / keep_rate), ONCE per epoch; that graph
  serves every step of the epoch and the evaluation after it.

Recommender:

    H_m  = E1_m + A_hat [E1_m,users ; E_i] + ris_adj_lambda A^_m [E_u ; E_i],
           E1_m = A_hat [E_u ; norm(f_m)]
    Z    = sum_m w_m H_m,   E = sum_{l=0..L} A_hat^l Z + ris_lambda norm(Z)    (L = gnn_layer)
    V_m  = sum_{l=0..L} A_hat^l A^_m [E_u ; norm(f_m)]                         (CL views)
    s_ui = <E_u, E_i>
    C(a, b; n) = mean_{n in batch} -log( e^{cos(a_n, b_n)/tau} / sum_{j in all rows} e^{cos(a_n, b_j)/tau} )
    L    = BPR + reg (||E_u||^2 + ||E_i||^2) + ssl_reg sum_pairs [C(users; batch users) + C(items; batch pos)]
    pairs: cl_method 0 = (V_m, V_m') for m < m';  cl_method 1 = (E, V_m) for every m

Defaults = reference ``Params.py``: d = 64, gnn_layer 1, lr 1e-3, reg 1e-5, ssl_reg 1e-2,
temp 0.5, keepRate 0.5, e_loss 0.1, ris_lambda 0.5, ris_adj_lambda 0.2, trans 0, cl_method 0,
rebuild_k 1, steps 5, noise_scale 0.1, noise_min 1e-4, noise_max 0.02, dims [1000], d_emb_size 10,
batch 1024 (``train_defaults``). README per dataset: TikTok reg 1e-4, trans 1, cl_method 1;
Baby ssl_reg 0.1, keepRate 1, e_loss 0.01; Sports reg 1e-6, temp 0.1, ris_lambda 0.1, e_loss 0.5,
keepRate 1, trans 1.

Decisions and deviations:
- Modalities: the reference hard-wires image + text (+ audio on TikTok); here one denoiser, one
  transform and one generated graph per modality of the dataset (TikTok: acoustic + visual), the
  softmax weights start at 1/M, and the contrastive pairs range over the modalities in dataset
  order (the reference's (image, text), (image, audio), (text, audio) for M = 3).
- The per-epoch diffusion phase runs in ``start_epoch`` (the reference's ``trainEpoch`` runs it
  before the recommender's batches): one pass over all users in a fresh random order, batches
  of ``diffusion_batch`` (1024 = the reference's batch); each batch's dense (B x I) rows are
  sliced from the CSR training matrix (the reference densifies U x I once). The rebuild goes a
  block of users at a time and takes a vectorised top-k into COO (the reference loops in Python
  with a ``.cpu()`` per element). Same numbers.
- The denoisers live in the submodule ``denoisers`` but are NOT parameters of the recommender:
  ``named_parameters`` (``self_trained``, `benchmark.model.Recommender`; hence ``parameters()``,
  which the trainer's optimiser and the records' parameter count use) leaves them out, so the
  recommender's Adam never holds or moves them, and ``describe()`` reports their size. Their Adam
  moments and step count are buffers of the denoiser (the optimiser built for each diffusion phase
  works on those very tensors), so ``state_dict`` -- checkpoints, the trainer's best-state copy --
  holds the denoisers, their optimiser state and the generated graphs: a resumed run continues
  exactly, and the restored best state scores with the graph of its own epoch. Cost: the best-state
  copy holds them too (3 x 2,010 I floats per modality: ~320 MB on TikTok, ~1.1 GB on Clothing).
- The generated graph is stored as the chosen items (U x k) and the keep mask over its entries,
  in a fixed order (user->item edges, item->user edges, then the diagonal); the sparse operator
  is derived from them. The reference drops edges over scipy's entry order: other draws, same
  distribution. Before the first ``start_epoch`` (a model scored untrained) the graph is built
  from the untrained denoisers on first use; the reference always trains before its first use.
- BPR: the reference divides the batch's sum by ``args.batch`` (1024), equal to the mean except
  on the epoch's last, partial batch; here the mean (``losses.bpr``). The suite's sampler (every
  pair once per epoch, uniform negatives not in the user's train set) is the reference's.
- InfoNCE: the reference's ``contrastLoss`` (the HKUDS helper) as a log-sum-exp over all rows;
  its epsilons (1e-8 inside the normalisation / added to the denominator, depending on the
  helper's version, which the stored reference lacks) are omitted.
- The reference's unused ``Dropout(0.1)`` and ``trans`` 2 (allrecipes only) are left out.
- Selection: the reference trains 50 epochs and reports the epoch of maximum *test* recall; here
  early stopping on validation Recall@20 with the suite's patience 20 (the reference's 50-epoch
  budget is below 300 x 20, so the default stop distance is kept) and the test split read once.

Cost (TikTok: 9,308 users, 6,710 items): each denoiser has (I + 10) 1000 + 1000 I + ~2k
parameters (13.4 M). Per epoch and modality: training ~3 x 2 U (I + 10) 1000 x 2 FLOP (~0.75
TFLOP) and the rebuild 5 x that forward (~1.25 TFLOP): the diffusion phase dominates the epoch.
Measured (``python -m benchmark.study.speed --per-model tiktok``, CPU, 1 thread; its first step
runs ``start_epoch``, so the diffusion phase is in the figure): 56.2 CPU s per epoch against
LightGCN's 0.89 (63x), 4.4 TFLOP of dense products, 1.8x this core's GEMM floor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark import losses
from benchmark.data import Dataset
from benchmark.graphs import SparseOperator, adjacency_operator, dense_rows
from benchmark.model import Batch, DotProductRecommender, id_embeddings
from benchmark.registry import register


def diffusion_schedule(steps: int, noise_scale: float, noise_min: float, noise_max: float) -> dict[str, Tensor]:
    """The reference's fixed-beta schedule (float64): betas, abar, and the posterior-mean
    coefficients c1 (on the denoiser's x^_0) and c2 (on x_t)."""
    var = np.linspace(noise_scale * noise_min, noise_scale * noise_max, steps, dtype=np.float64)
    abar_lin = 1.0 - var
    betas = [1.0 - abar_lin[0]] + [min(1.0 - abar_lin[i] / abar_lin[i - 1], 0.999) for i in range(1, steps)]
    b = torch.tensor(betas, dtype=torch.float64)
    b[0] = 1e-4  # the reference's beta_fixed
    abar = torch.cumprod(1.0 - b, 0)
    abar_prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
    return {
        "betas": b,
        "abar": abar,
        "c1": b * abar_prev.sqrt() / (1.0 - abar),
        "c2": (1.0 - abar_prev) * (1.0 - b).sqrt() / (1.0 - abar),
    }


def snr_weights(abar: Tensor) -> Tensor:
    """L_diff's weight per step t: SNR(t-1) - SNR(t), and 1 at t = 0."""
    snr = abar / (1.0 - abar)
    w = torch.roll(snr, 1) - snr
    w[0] = 1.0
    return w


def generated_graph(items: Tensor, keep: Tensor, n_users: int, n_items: int, keep_rate: float) -> Tensor:
    """D^-1/2 (A_m + I) D^-1/2 over the (U+I) nodes for the chosen ``items`` (U x k), with only
    the entries where ``keep`` holds, divided by ``keep_rate``: a coalesced sparse COO. Entry
    order (of ``keep``): user->item edges row-major, item->user edges, then the diagonal."""
    k = items.shape[1]
    dev = items.device
    u = torch.arange(n_users, device=dev).repeat_interleave(k)
    i = n_users + items.reshape(-1)
    diag = torch.arange(n_users + n_items, device=dev)
    rows, cols = torch.cat([u, i, diag]), torch.cat([i, u, diag])
    deg = torch.bincount(rows, minlength=n_users + n_items).float()
    dinv = deg.rsqrt()
    vals = dinv[rows] * dinv[cols] / keep_rate
    idx = torch.stack([rows[keep], cols[keep]])
    return torch.sparse_coo_tensor(idx, vals[keep], (n_users + n_items,) * 2).coalesce()


def drop_mask(n: int, keep_rate: float, device: torch.device) -> Tensor:
    """The reference's ``floor(rand + keepRate)``: each entry kept with probability keep_rate."""
    return (torch.rand(n, device=device) + keep_rate).floor().bool()


def contrast(a: Tensor, b: Tensor, nodes: Tensor, temp: float) -> Tensor:
    """mean_n -log softmax_j(cos(a_n, b_j) / temp)[n] over the rows ``nodes`` (repeats counted),
    the denominator over every row of ``b``."""
    q = F.normalize(a[nodes], dim=1)
    t = F.normalize(b, dim=1)
    logits = q @ t.T / temp
    return (torch.logsumexp(logits, dim=1) - (q * t[nodes]).sum(1) / temp).mean()


class Denoiser(nn.Module):
    """g(x_t, t): [drop(x_t) ; Lin(sincos(t))] -> Linear + tanh -> Linear, predicting x_0. Holds
    its own Adam state as buffers (``m_*``, ``v_*``, ``adam_step``)."""

    def __init__(self, n_items: int, hidden: int, time_dim: int, dropout: float) -> None:
        super().__init__()
        self.time_dim, self.dropout = time_dim, dropout
        self.emb = nn.Linear(time_dim, time_dim)
        self.inp = nn.Linear(n_items + time_dim, hidden)
        self.out = nn.Linear(hidden, n_items)
        for layer in (self.emb, self.inp, self.out):  # the reference's init_weights
            out_f, in_f = layer.weight.shape
            nn.init.normal_(layer.weight, 0.0, math.sqrt(2.0 / (in_f + out_f)))
            nn.init.normal_(layer.bias, 0.0, 0.001)
        half = time_dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
        self.register_buffer("freqs", freqs, persistent=False)
        for name, p in self.named_parameters():
            key = name.replace(".", "_")
            self.register_buffer(f"m_{key}", torch.zeros_like(p))
            self.register_buffer(f"v_{key}", torch.zeros_like(p))
        self.register_buffer("adam_step", torch.zeros(()))

    def forward(self, x: Tensor, t: Tensor, dropout: bool) -> Tensor:
        arg = t[:, None].float() * self.freqs[None]
        temb = torch.cat([torch.cos(arg), torch.sin(arg)], dim=-1)
        if self.time_dim % 2:
            temb = torch.cat([temb, torch.zeros_like(temb[:, :1])], dim=-1)
        if dropout:
            x = F.dropout(x, self.dropout, training=True)
        h = torch.tanh(self.inp(torch.cat([x, self.emb(temb)], dim=-1)))
        return self.out(h)

    def optimizer(self, lr: float) -> tuple[torch.optim.Adam, list[nn.Parameter]]:
        """An Adam whose moments are this module's buffers (updated in place by its steps)."""
        named = list(self.named_parameters())
        params = [p for _, p in named]
        opt = torch.optim.Adam(params, lr=lr, foreach=False)
        step = self.adam_step.detach().to("cpu", torch.float32)
        for name, p in named:
            key = name.replace(".", "_")
            opt.state[p] = {
                "step": step.clone(),  # one counter per parameter, as Adam keeps them
                "exp_avg": getattr(self, f"m_{key}"),
                "exp_avg_sq": getattr(self, f"v_{key}"),
            }
        return opt, params

    def store_step(self, opt: torch.optim.Adam, params: list[nn.Parameter]) -> None:
        self.adam_step.fill_(float(opt.state[params[0]]["step"]))


@register("diffmm")
class DiffMM(DotProductRecommender):
    requires_features = True
    self_trained = ("denoisers",)  # their own Adam, stepped in `start_epoch`
    train_defaults = {"lr": 1e-3, "batch_size": 1024}
    # README settings per dataset: reg 1e-5 (default, Baby) / 1e-4 (TikTok) / 1e-6 (Sports) and
    # ssl_reg 1e-2 (TikTok, Sports) / 1e-1 (Baby); lr the default and half of it
    grid = {"lr": [1e-3, 5e-4], "reg": [1e-5, 1e-4, 1e-6], "ssl_reg": [1e-2, 1e-1]}

    @dataclass(frozen=True)
    class Config:
        dim: int = 64  # embedding size (latdim)
        gnn_layer: int = 1  # layers on A_hat after the modality fusion (summed)
        reg: float = 1e-5  # weight of ||E_u||^2 + ||E_i||^2 (full tables)
        ssl_reg: float = 1e-2  # weight of each contrastive term
        temp: float = 0.5  # InfoNCE temperature
        keep_rate: float = 0.5  # edge keep probability of the generated graphs (keepRate)
        e_loss: float = 0.1  # weight of the modality-aware MSI term in the diffusion loss
        ris_lambda: float = 0.5  # weight of norm(Z) added to the final embeddings
        ris_adj_lambda: float = 0.2  # weight of the generated-graph branch in H_m
        trans: int = 0  # 0: LeakyReLU(X W) without bias; 1: Linear(X)
        cl_method: int = 0  # 0: modality vs modality; 1: fused vs each modality
        rebuild_k: int = 1  # generated edges per user
        steps: int = 5  # diffusion steps
        noise_scale: float = 0.1  # schedule scale
        noise_min: float = 1e-4  # schedule start (times noise_scale)
        noise_max: float = 0.02  # schedule end (times noise_scale)
        hidden: int = 1000  # denoiser hidden width (dims [1000])
        time_dim: int = 10  # denoiser time-embedding size (d_emb_size)
        denoise_dropout: float = 0.5  # dropout on x_t while training the denoiser
        diffusion_lr: float = 1e-3  # Adam learning rate of every denoiser
        diffusion_batch: int = 1024  # users per diffusion step and per rebuild block

    def __init__(self, data: Dataset, config: Config) -> None:
        super().__init__(data, config)
        if config.trans not in (0, 1) or config.cl_method not in (0, 1):
            raise ValueError(f"diffmm: trans and cl_method must be 0 or 1, got {config.trans}, {config.cl_method}")
        self.modalities: tuple[str, ...] = tuple(data.modalities)
        n_mod = len(self.modalities)
        self.user, self.item = id_embeddings(data.n_users, data.n_items, config.dim)
        self.trans = nn.ModuleDict()
        self.trans_w = nn.ParameterDict()
        for m in self.modalities:
            x = np.array(data.features[m], dtype=np.float32)
            self.register_buffer(f"raw_{m}", torch.from_numpy(x), persistent=False)
            if config.trans == 1:
                self.trans[m] = nn.Linear(x.shape[1], config.dim)
            else:
                self.trans_w[m] = nn.Parameter(nn.init.xavier_uniform_(torch.empty(x.shape[1], config.dim)))
        self.modal_weight = nn.Parameter(torch.full((n_mod,), 1.0 / n_mod))
        self.adj = adjacency_operator(data.train, "sym", self_loops=True)
        self._train = sp.csr_matrix((data.train != 0).astype(np.float32))

        sched = diffusion_schedule(config.steps, config.noise_scale, config.noise_min, config.noise_max)
        for k, v in sched.items():
            self.register_buffer(f"sched_{k}", v.float(), persistent=False)
        self.register_buffer("snr_w", snr_weights(sched["abar"]).float(), persistent=False)
        self.denoisers = nn.ModuleList(
            Denoiser(data.n_items, config.hidden, config.time_dim, config.denoise_dropout) for _ in self.modalities
        )
        nnz = 2 * data.n_users * config.rebuild_k + data.n_users + data.n_items
        self.register_buffer("gen_items", torch.zeros(n_mod, data.n_users, config.rebuild_k, dtype=torch.long))
        self.register_buffer("gen_keep", torch.zeros(n_mod, nnz, dtype=torch.bool))
        self.register_buffer("gen_ready", torch.zeros((), dtype=torch.bool))
        self._gen_ops: list[SparseOperator] | None = None
        self.register_load_state_dict_post_hook(lambda module, keys: module._forget_graphs())

    # -- features ------------------------------------------------------------------------------
    def modal_feats(self) -> list[Tensor]:
        """f_m per modality (un-normalised)."""
        out = []
        for m in self.modalities:
            x = getattr(self, f"raw_{m}")
            if self.config.trans == 1:
                out.append(self.trans[m](x))
            else:
                out.append(F.leaky_relu(x @ self.trans_w[m], 0.2))
        return out

    # -- diffusion -----------------------------------------------------------------------------
    def _rows(self, users: Tensor) -> Tensor:
        """The users' binary training rows, dense (B x I)."""
        return dense_rows(self._train, users, self.user.weight.device)

    def diffusion_loss(self, den: Denoiser, x0: Tensor, item_emb: Tensor, feats: Tensor) -> Tensor:
        """L_diff + e_loss L_gc for one batch of rows (draws t, the noise and the dropout)."""
        b = x0.shape[0]
        t = torch.randint(0, self.config.steps, (b,), device=x0.device)
        noise = torch.randn_like(x0)
        a = self.sched_abar[t][:, None]
        x_t = a.sqrt() * x0 + (1.0 - a).sqrt() * noise
        pred = den(x_t, t, dropout=True)
        mse = (x0 - pred).pow(2).mean(1)
        gc = (pred @ feats - x0 @ item_emb).pow(2).mean(1)
        return (self.snr_w[t] * mse).mean() + self.config.e_loss * gc.mean()

    @torch.no_grad()
    def denoise(self, den: Denoiser, x0: Tensor) -> Tensor:
        """The reference's p_sample with sampling_steps 0, no sampling noise."""
        x = x0
        for s in reversed(range(self.config.steps)):
            t = torch.full((x.shape[0],), s, device=x.device, dtype=torch.long)
            x = self.sched_c1[s] * den(x, t, dropout=False) + self.sched_c2[s] * x
        return x

    def train_denoisers(self) -> dict[str, float]:
        """One pass of every denoiser over all users (random order); mean loss per modality."""
        cfg = self.config
        with torch.no_grad():
            feats = [f.detach() for f in self.modal_feats()]
            item_emb = self.item.weight.detach()
        opts = [d.optimizer(cfg.diffusion_lr) for d in self.denoisers]
        order = torch.randperm(self.n_users)
        sums = [0.0] * len(self.denoisers)
        n = 0
        with torch.enable_grad():
            for s in range(0, self.n_users, cfg.diffusion_batch):
                x0 = self._rows(order[s : s + cfg.diffusion_batch])
                for k, (den, (opt, _)) in enumerate(zip(self.denoisers, opts, strict=True)):
                    opt.zero_grad(set_to_none=True)
                    loss = self.diffusion_loss(den, x0, item_emb, feats[k])
                    loss.backward()
                    opt.step()
                    sums[k] += float(loss.detach())
                n += 1
        for den, (opt, params) in zip(self.denoisers, opts, strict=True):
            den.store_step(opt, params)
            den.zero_grad(set_to_none=True)
        return {m: v / n for m, v in zip(self.modalities, sums, strict=True)}

    @torch.no_grad()
    def rebuild(self) -> None:
        """Top-k of the denoised rows per user and modality, then one edge-drop draw each."""
        cfg = self.config
        for k, den in enumerate(self.denoisers):
            for s in range(0, self.n_users, cfg.diffusion_batch):
                users = torch.arange(s, min(s + cfg.diffusion_batch, self.n_users))
                x = self.denoise(den, self._rows(users))
                self.gen_items[k, s : s + len(users)] = x.topk(cfg.rebuild_k, dim=1).indices
        for k in range(len(self.denoisers)):
            self.gen_keep[k] = drop_mask(self.gen_keep.shape[1], cfg.keep_rate, self.gen_keep.device)
        self.gen_ready.fill_(True)
        self._forget_graphs()

    def start_epoch(self, epoch: int) -> None:
        self.last_diffusion_loss = self.train_denoisers()
        self.rebuild()

    def _forget_graphs(self) -> None:
        self._gen_ops = None

    def generated(self) -> list[SparseOperator]:
        """The current A^_m as operators (built from the stored items and keep masks)."""
        if not bool(self.gen_ready):
            self.rebuild()
        dev = self.gen_items.device
        if self._gen_ops is None or self._gen_ops[0].a.device != dev:
            self._gen_ops = [
                SparseOperator(
                    generated_graph(
                        self.gen_items[k], self.gen_keep[k], self.n_users, self.n_items, self.config.keep_rate
                    ),
                    symmetric=False,
                )
                for k in range(len(self.modalities))
            ]
        return self._gen_ops

    # -- recommender -----------------------------------------------------------------------------
    def _layers(self, x: Tensor) -> Tensor:
        out, h = x, x
        for _ in range(self.config.gnn_layer):
            h = self.adj(h)
            out = out + h
        return out

    def _embeddings(self, views: bool) -> tuple[Tensor, list[Tensor]]:
        """E (users then items) and, when asked, the CL views V_m."""
        cfg = self.config
        gen = self.generated()
        feats = [F.normalize(f, dim=1) for f in self.modal_feats()]
        ego = torch.cat([self.user.weight, self.item.weight])
        w = torch.softmax(self.modal_weight, dim=0)
        fused: Tensor | None = None
        for k, f in enumerate(feats):
            e1 = self.adj(torch.cat([self.user.weight, f]))
            h = e1 + self.adj(torch.cat([e1[: self.n_users], self.item.weight])) + cfg.ris_adj_lambda * gen[k](ego)
            fused = w[k] * h if fused is None else fused + w[k] * h
        assert fused is not None
        out = self._layers(fused) + cfg.ris_lambda * F.normalize(fused, dim=1)
        cl = [self._layers(gen[k](torch.cat([self.user.weight, f]))) for k, f in enumerate(feats)] if views else []
        return out, cl

    def forward(self) -> tuple[Tensor, Tensor]:
        out, _ = self._embeddings(views=False)
        return out[: self.n_users], out[self.n_users :]

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        cfg = self.config
        out, views = self._embeddings(views=True)
        users, items = out[: self.n_users], out[self.n_users :]
        rank = losses.bpr_dot(users[batch.users], items[batch.pos], items[batch.neg])
        reg = cfg.reg * (self.user.weight.pow(2).sum() + self.item.weight.pow(2).sum())
        if cfg.cl_method == 0:
            pairs = list(combinations(views, 2))
        else:
            pairs = [(out, v) for v in views]
        u = self.n_users
        cl = sum(
            contrast(a[:u], b[:u], batch.users, cfg.temp) + contrast(a[u:], b[u:], batch.pos, cfg.temp)
            for a, b in pairs
        )
        cl = cfg.ssl_reg * cl if pairs else rank.new_zeros(())
        return {"loss": rank + reg + cl, "bpr": rank, "reg": reg, "cl": cl}

    def describe(self) -> dict[str, object]:
        w = torch.softmax(self.modal_weight.detach(), dim=0).cpu().tolist()
        return {
            "modalities": list(self.modalities),
            "modality_weights": w,
            "denoiser_parameters": sum(p.numel() for d in self.denoisers for p in d.parameters()),
            "graph_refresh": "diffusion phase + generated-graph rebuild in start_epoch (before each epoch's batches)",
        }
