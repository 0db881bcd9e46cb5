"""MMIL's sparse history products compute the same loss and gradients as the padded (B, L, d)
computation they replaced (issue #14). `PaddedMMIL` keeps that old computation verbatim."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from benchmark import losses
from benchmark.config import build_config
from benchmark.data import load_dataset
from benchmark.model import Batch
from benchmark.trainer import seed_everything
from mmil import MMIL, VARIANTS, MMILConfig
from mmil.sparse import HistorySoftmax
from mmil.views import bernoulli_view


def old_infonce(h1: Tensor, h2: Tensor, tau: float) -> Tensor:
    """The old multi_intent_infonce: normalise every intent, then dot products."""
    b, k, _ = h1.shape
    z = F.normalize(torch.cat([h1, h2], dim=1), dim=-1)
    sim = z @ z.transpose(1, 2) / tau
    eye = torch.eye(2 * k, dtype=torch.bool, device=z.device)
    sim = sim.masked_fill(eye, -torch.inf)
    target = torch.cat([torch.arange(k, 2 * k), torch.arange(0, k)]).to(z.device)
    return F.cross_entropy(sim.reshape(b * 2 * k, 2 * k), target.repeat(b))


def padded_attention(att: Any, logits: Tensor, e: Tensor, mask: Tensor) -> Tensor:
    """The old IntentAttention.forward: logits (B, L, K), e (B, L, d) gathered per position."""
    m = mask.unsqueeze(1)
    logits = logits.transpose(1, 2).masked_fill(~m, -torch.inf)
    attn = torch.softmax(logits.masked_fill(~m.any(-1, keepdim=True), 0.0), dim=-1) * m
    return att.w_v(torch.bmm(attn, e))


class PaddedMMIL(MMIL):
    """MMIL with the old training computation: gathered (B, L, d) histories, masked means by
    multiply-and-sum, a padded softmax and bmm per modality and pass."""

    def item_tables(self, items: Tensor) -> dict[str, Any]:
        emb = self.item_embeddings(items)
        tables: dict[str, Any] = {"emb": emb}
        if self.config.use_intents:
            protos = self.intents.prototypes
            tables["logits"] = {m: att.item_logits(protos, emb[m]) for m, att in self.attention.items()}
        return tables

    def encode(
        self, users: Tensor, idx: Tensor, mask: Tensor, tables: dict[str, Any], with_h: bool = True
    ) -> dict[str, Tensor]:
        cfg = self.config
        e_u = self.user(users)
        w = mask.unsqueeze(-1).float()
        count = w.sum(1).clamp_min(1.0)
        gathered = {m: t[idx] for m, t in tables["emb"].items()}
        means = {m: (g * w).sum(1) / count for m, g in gathered.items()}
        z = e_u + torch.stack([means[m] for m in self.modalities]).mean(0)
        out = {"z": z}
        if not cfg.use_intents:
            out["q"] = self.f_p(z) + e_u
            return out
        s, dist = self.intents.assign(z)
        per_mod = [
            padded_attention(att, tables["logits"][m][idx], gathered[m], mask) for m, att in self.attention.items()
        ]
        v = torch.stack(per_mod, dim=1)
        if hasattr(self, "weights"):
            r = self.weights(torch.stack([means[m] for m in self.attention], dim=1))
        else:
            r = torch.full(v.shape[:2], 1.0 / v.shape[1], device=v.device)
        h = (r[:, :, None, None] * v).sum(1)
        out.update(s=s, dist=dist, H=h, r=r, q=self.f_p((s.unsqueeze(-1) * h).sum(1)) + e_u)
        return out

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        cfg = self.config
        hist = self.hist[batch.users]
        mask = (hist != self.n_items) & (hist != batch.pos.unsqueeze(1))
        uniq, inv = torch.unique(torch.cat([hist.reshape(-1), batch.pos, batch.neg.reshape(-1)]), return_inverse=True)
        tables = self.item_tables(uniq.clamp_max(self.n_items - 1))
        n_h = hist.numel()
        idx = inv[:n_h].view_as(hist)
        pos_rows, neg_rows = inv[n_h : n_h + len(batch.pos)], inv[n_h + len(batch.pos) :].view_as(batch.neg)
        enc = self.encode(batch.users, idx, mask, tables)
        q_items = self.item_vectors(tables["emb"])
        y_pos = losses.dot(enc["q"], q_items[pos_rows])
        y_neg = losses.dot(enc["q"], q_items[neg_rows])
        if cfg.loss == "bce":
            l_p = (
                F.binary_cross_entropy_with_logits(y_pos, torch.ones_like(y_pos)) * 0.5
                + F.binary_cross_entropy_with_logits(y_neg, torch.zeros_like(y_neg)) * 0.5
            )
        else:
            l_p = losses.bpr(y_pos, y_neg)
        reg = (
            cfg.reg
            * (
                self.user(batch.users).pow(2).sum()
                + tables["emb"]["c"][pos_rows].pow(2).sum()
                + tables["emb"]["c"][neg_rows].pow(2).sum()
            )
            / len(batch.users)
        )
        terms = {"l_p": l_p, "reg": reg}
        total = l_p + reg
        if cfg.use_intents:
            terms["l_kl"] = self.intents.kl_loss(enc["s"])
            terms["l_d"] = self.intents.distance_loss(enc["s"], enc["dist"])
            terms["l_c"] = self.intents.orthogonality_loss()
            total = total + cfg.kl_weight * terms["l_kl"] + cfg.mu * terms["l_d"] + cfg.theta * terms["l_c"]
            if cfg.gamma > 0:
                users = torch.unique(batch.users)
                hist = self.hist[users]
                mask = hist != self.n_items
                keep = mask.sum(1) >= 2
                users, hist, mask = users[keep], hist[keep], mask[keep]
                idx = torch.searchsorted(uniq, hist).clamp_max(len(uniq) - 1)
                h1 = self.encode(users, idx, bernoulli_view(mask, cfg.keep_prob), tables)["H"]
                h2 = self.encode(users, idx, bernoulli_view(mask, cfg.keep_prob), tables)["H"]
                terms["l_cl"] = old_infonce(h1, h2, cfg.tau)
                total = total + cfg.gamma * terms["l_cl"]
        terms["loss"] = total
        return terms


def _batch(data: Any, n: int, seed: int) -> Batch:
    rng = np.random.default_rng(seed)
    coo = data.train.tocoo()
    pick = rng.choice(coo.nnz, n, replace=False)
    return Batch(
        torch.from_numpy(coo.row[pick].astype(np.int64)),
        torch.from_numpy(coo.col[pick].astype(np.int64)),
        torch.from_numpy(rng.integers(0, data.n_items, n)),
    )


def _run(model: MMIL, batch: Batch) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    torch.manual_seed(123)  # the same dropout masks and contrastive views for both
    model.zero_grad()
    terms = model.loss(batch)
    terms["loss"].backward()
    return (
        {k: v.detach() for k, v in terms.items()},
        {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None},
    )


CASES = {
    **VARIANTS,
    "dot attention, uniform r, bpr, sample kl": {
        "attn_scale": "dot",
        "modality_weights": "uniform",
        "loss": "bpr",
        "kl_mode": "sample",
    },
    # logits spread over 2 / 0.004 = 500: the shared shift underflows, the per-row one runs
    "exact-shift fallback": {"attn_temp": 0.004},
}


@pytest.mark.parametrize("case", list(CASES))
def test_sparse_encode_equals_padded(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fallbacks = []
    init = HistorySoftmax.__init__

    def spy(self: HistorySoftmax, *args: Any) -> None:
        init(self, *args)
        fallbacks.append(self.exact is not None)

    monkeypatch.setattr(HistorySoftmax, "__init__", spy)
    data = load_dataset("synthetic-tiny")
    cfg = build_config(MMILConfig, CASES[case])
    seed_everything(0)
    new = MMIL(data, cfg)
    old = PaddedMMIL(data, cfg)
    old.load_state_dict(new.state_dict())
    for seed in range(2):
        batch = _batch(data, 96, seed)
        t_new, g_new = _run(new, batch)
        t_old, g_old = _run(old, batch)
        assert set(t_new) == set(t_old) and set(g_new) == set(g_old)
        for k in t_old:
            torch.testing.assert_close(t_new[k], t_old[k], atol=1e-5, rtol=1e-5, msg=f"{case}: {k}")
        for k in g_old:
            torch.testing.assert_close(g_new[k], g_old[k], atol=1e-5, rtol=1e-5, msg=f"{case}: grad {k}")
    if cfg.use_intents:
        assert any(fallbacks) == (case == "exact-shift fallback")


def test_user_vectors_and_intents_equal_padded() -> None:
    """Scoring (q_u of every user from the whole history) and H, with empty histories present."""
    data = load_dataset("synthetic-tiny")
    seed_everything(0)
    new = MMIL(data, MMILConfig())
    old = PaddedMMIL(data, MMILConfig())
    old.load_state_dict(new.state_dict())
    new.eval(), old.eval()
    users = torch.arange(data.n_users)
    hist = new.hist[users]
    mask = hist != data.n_items
    mask[::7] = False  # some users with no history at all
    with torch.no_grad():
        tables = new.item_tables(torch.arange(data.n_items))
        a = new.encode(users, hist.clamp_max(data.n_items - 1), mask, tables)
        b = old.encode(users, hist.clamp_max(data.n_items - 1), mask, tables)
    for k in ("z", "s", "r", "q", "H"):
        torch.testing.assert_close(a[k], b[k], atol=1e-5, rtol=1e-5, msg=k)
