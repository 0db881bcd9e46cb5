"""The intent representation learner (paper Sec. 4.2), as pinned down in mmil.md section 2.

f(z) = w ⊙ z,  w = softplus(ŵ)                               (metric map)
g(a, b) = ||a - b||²                                          (distance)
s_uk = softmax_k(-g(f(z_u), p_k) / t_assign)                  (Eq. 4, soft assignment)
L_d = mean_u Σ_k s_uk g(f(z_u), p_k)                          (Eq. 5)
L_c = Σ_{m<n} cos(p_m, p_n)²       (amended Eq. 6; "dot": Σ_{m<n} <p_m, p_n> as printed)
L_kl = KL(mean_u s_u || U(K))      ("marginal", default)
     = mean_u Σ_k s_uk log s_uk    ("sample", printed Eq. 16-17 without the constant log K)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class IntentLearner(nn.Module):
    def __init__(self, n_intents: int, dim: int, t_assign: float, kl_mode: str, orth_form: str) -> None:
        super().__init__()
        self.prototypes = nn.Parameter(torch.empty(n_intents, dim))
        nn.init.xavier_uniform_(self.prototypes)
        # softplus(0.5413) = 1: the metric map starts as the identity
        self.metric_raw = nn.Parameter(torch.full((dim,), 0.5413))
        self.t_assign = t_assign
        self.kl_mode = kl_mode
        self.orth_form = orth_form

    def metric(self, z: Tensor) -> Tensor:
        return F.softplus(self.metric_raw) * z

    def distances(self, z: Tensor) -> Tensor:
        """g(f(z_u), p_k) for every user row and intent: (B, K)."""
        return torch.cdist(self.metric(z), self.prototypes).pow(2)

    def assign(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """The soft assignment s (B, K) and the distances it came from."""
        dist = self.distances(z)
        return torch.softmax(-dist / self.t_assign, dim=1), dist

    @staticmethod
    def distance_loss(s: Tensor, dist: Tensor) -> Tensor:
        return (s * dist).sum(1).mean()

    def orthogonality_loss(self) -> Tensor:
        p = self.prototypes
        k = p.shape[0]
        upper = torch.triu(torch.ones(k, k, dtype=torch.bool, device=p.device), diagonal=1)
        if self.orth_form == "dot":
            return (p @ p.T)[upper].sum()
        pn = F.normalize(p, dim=1)
        return (pn @ pn.T)[upper].pow(2).sum()

    def kl_loss(self, s: Tensor) -> Tensor:
        k = s.shape[1]
        if self.kl_mode == "sample":
            return (s * torch.log(s.clamp_min(1e-12))).sum(1).mean()
        mean = s.mean(0)
        return (mean * torch.log(mean.clamp_min(1e-12) * k)).sum()

    @torch.no_grad()
    def init_kmeans(self, z: Tensor, seed: int) -> None:
        """Set the prototypes to the k-means centroids of f(z) over all users (proto_init=kmeans)."""
        from sklearn.cluster import KMeans

        x = self.metric(z).cpu().numpy()
        km = KMeans(n_clusters=self.prototypes.shape[0], n_init=3, random_state=seed).fit(x)
        self.prototypes.copy_(torch.from_numpy(km.cluster_centers_).to(self.prototypes))
