"""Top-K metrics from a hit matrix, vectorised over users.

For a user with relevant set T and ranked list r_1..r_K:

- Recall@K = |hits in top K| / |T|
- Precision@K = |hits in top K| / K
- NDCG@K = DCG / IDCG, DCG = sum_{j<=K, r_j in T} 1 / log2(j + 1), IDCG = sum_{j<=min(|T|,K)} 1 / log2(j + 1)
  (the standard IDCG, over min(|T|, K) ranks, as MMRec; not LATTICE's hits-only IDCG).
"""

from __future__ import annotations

import torch
from torch import Tensor

KS: tuple[int, ...] = (10, 20, 50)


def topk_metrics(hits: Tensor, n_relevant: Tensor, ks: tuple[int, ...] = KS) -> dict[str, Tensor]:
    """``hits``: (B, K_max), True (or a count) where the item at that rank is relevant;
    ``n_relevant``: (B,).

    Returns ``{"recall@K", "precision@K", "ndcg@K"}`` -> (B,) float tensors.
    """
    if hits.shape[1] < max(ks):
        raise ValueError(f"need at least {max(ks)} ranked items, got {hits.shape[1]}")
    h = hits.float()
    n_rel = n_relevant.float()
    discount = 1.0 / torch.log2(torch.arange(2, hits.shape[1] + 2, device=h.device, dtype=torch.float32))
    dcg_cum = torch.cumsum(h * discount, dim=1)
    hit_cum = torch.cumsum(h, dim=1)
    idcg_table = torch.cumsum(discount, dim=0)
    out: dict[str, Tensor] = {}
    for k in ks:
        n_hit = hit_cum[:, k - 1]
        out[f"recall@{k}"] = n_hit / n_rel
        out[f"precision@{k}"] = n_hit / k
        ideal = idcg_table[(torch.clamp(n_relevant, max=k) - 1).long()]
        out[f"ndcg@{k}"] = dcg_cum[:, k - 1] / ideal
    return out
