"""The multi-intent contrastive regularisation (paper Sec. 4.4), mmil.md section 5.

Two views of each history keep every item independently with probability ``keep_prob`` (at
least one item always stays). For each user and intent k the positive pair is (h'_uk, h''_uk);
the negatives are the user's other 2K - 2 intents in both views; cosine similarity over the
temperature tau; symmetric (both views serve as anchors); averaged over users and intents.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def bernoulli_view(mask: Tensor, keep_prob: float, generator: torch.Generator | None = None) -> Tensor:
    """A random sub-mask of ``mask`` (B, L): each real item kept with ``keep_prob``, >= 1 kept."""
    u = torch.rand(mask.shape, device=mask.device, generator=generator)
    keep = (u < keep_prob) & mask
    # rows that lost everything keep the real item with the smallest draw
    forced = u.masked_fill(~mask, 2.0).argmin(dim=1)
    empty = ~keep.any(1) & mask.any(1)
    keep[empty, forced[empty]] = True
    return keep


def multi_intent_infonce(h1: Tensor, h2: Tensor, tau: float) -> Tensor:
    """h1, h2: (B, K, d), the intents of the same users in two views. Returns the mean loss."""
    b, k, _ = h1.shape
    h = torch.cat([h1, h2], dim=1)  # (B, 2K, d)
    # cosines from the Gram matrix: dividing (B, 2K, 2K) instead of normalising (B, 2K, d);
    # the eps is F.normalize's, so cos = <x, y> / (max(|x|, eps) max(|y|, eps)) as before
    norm = torch.linalg.vector_norm(h, dim=-1).clamp_min(1e-12)
    sim = (h @ h.transpose(1, 2)) / (norm.unsqueeze(2) * norm.unsqueeze(1)) / tau
    eye = torch.eye(2 * k, dtype=torch.bool, device=h.device)
    sim = sim.masked_fill(eye, -torch.inf)
    target = torch.cat([torch.arange(k, 2 * k), torch.arange(0, k)]).to(h.device)
    return F.cross_entropy(sim.reshape(b * 2 * k, 2 * k), target.repeat(b))
