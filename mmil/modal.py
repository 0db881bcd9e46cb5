"""The modal side of MMIL (paper Sec. 4.3), as pinned down in mmil.md sections 1 and 3.

    e^m_i = g_m(x^m_i),  g_m = Linear(dim_m, d) -> LeakyReLU -> Dropout -> Linear(d, d)
    r_u = softmax(f_r(flatten(Transformer([ē^c_u, ē^v_u, ...]))) / r_temp)            (Eq. 9)
    V^m_u = softmax_L(cos(P W^m_q, E^m_u W^m_k) / attn_temp) (E^m_u W^m_v)   (amended Eq. 10)
            (attn_scale="dot": (P W^m_q)(E^m_u W^m_k)^T / sqrt(d), the printed form)
    h_uk = Σ_m r_um V^m_uk                                                              (Eq. 11)

The attention logits and values depend on the item only, so they are computed once per item per
step (`MMIL.item_tables`) and shared by the main pass and both contrastive views.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ModalEncoder(nn.Module):
    """g_m: a raw feature (already L2-normalised) to a d-dimensional item embedding."""

    def __init__(self, in_dim: int, dim: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, dim), nn.LeakyReLU(), nn.Dropout(dropout), nn.Linear(dim, dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ModalityWeights(nn.Module):
    """r_u from the per-modality history means: one transformer block, flatten, linear, softmax."""

    def __init__(self, n_modalities: int, dim: int, dropout: float, temperature: float) -> None:
        super().__init__()
        self.block = nn.TransformerEncoderLayer(
            dim, nhead=2, dim_feedforward=2 * dim, dropout=dropout, batch_first=True
        )
        self.f_r = nn.Linear(n_modalities * dim, n_modalities)
        self.temperature = temperature

    def forward(self, tokens: Tensor) -> Tensor:
        """tokens: (B, |M|, d) -> r: (B, |M|)."""
        h = self.block(tokens)
        return torch.softmax(self.f_r(h.flatten(1)) / self.temperature, dim=1)


class IntentAttention(nn.Module):
    """Per-modality attention of the K intent prototypes over a user's history items.

    The logit of intent k for item j depends on the item only, so `item_logits` computes them
    once per step for every item in play (K numbers per item), and the model takes the values
    ``E W_v`` per item too (``softmax(.) (E W_v)``, W_v applied before the weighted sum). The
    model's passes then sum over each history as sparse products (`mmil.sparse`, see
    `MMIL.encode`); `forward` is the same attention on padded (B, L) histories, kept as the
    plain per-user form (shape and padding checks use it).
    """

    def __init__(self, dim: int, scale: str, temperature: float) -> None:
        super().__init__()
        self.w_q = nn.Linear(dim, dim, bias=False)
        self.w_k = nn.Linear(dim, dim, bias=False)
        self.w_v = nn.Linear(dim, dim, bias=False)
        self.scale = scale
        self.temperature = temperature

    def item_logits(self, prototypes: Tensor, e: Tensor) -> Tensor:
        """(n, K) attention logits of every intent for items with embeddings e: (n, d)."""
        q, k = self.w_q(prototypes), self.w_k(e)
        if self.scale == "cos":
            return F.normalize(k, dim=-1) @ F.normalize(q, dim=-1).T / self.temperature
        return k @ q.T / math.sqrt(q.shape[-1])

    def forward(self, logits: Tensor, e: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """logits (B, L, K) and embeddings e (B, L, d) gathered at the history positions; mask
        (B, L) True where a real item. Returns V (B, K, d) and the attention (B, K, L); a user
        with no item gets zeros."""
        m = mask.unsqueeze(1)
        logits = logits.transpose(1, 2).masked_fill(~m, -torch.inf)
        # an empty history would give softmax over nothing (NaN): its row of weights is zero instead
        attn = torch.softmax(logits.masked_fill(~m.any(-1, keepdim=True), 0.0), dim=-1) * m
        return self.w_v(torch.bmm(attn, e)), attn
