"""The embedded default: a seeded synthetic generator with presets shaped after the paper's Table 1.

Generative story (all seeded):

1. ``n_intents`` latent intents, each a centroid in R^r; every item belongs to one intent and its
   latent factor is the centroid plus item noise; item popularity is log-normal.
2. Every user mixes a few intents (a sparse Dirichlet draw) and has a taste vector per intent
   (the centroid plus personal noise).
3. A user's number of interactions is ``5 + Geometric`` with the preset's mean (5-core-like); the
   items are drawn without replacement (Gumbel top-k) from the mixture over the user's intents of
   ``softmax(beta <taste, item> + log popularity)``.
4. Visual (4096-d, non-negative like CNN activations) and text (384-d) features are noisy random
   projections of the item factors, so content is informative but not sufficient.
5. Split per user as LATTICE does (random; 1 + 1 held out below 10 items, else 20 % halved).

Presets keep each Amazon dataset's user/item ratio and mean interactions per user (Table 1),
scaled down about 20x in users and items; density therefore grows by the same factor, and the
ordering of the three densities (Baby > Sports > Clothing) is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .dataset import Dataset, from_triples
from .splits import random_split


@dataclass(frozen=True)
class SyntheticSpec:
    n_users: int
    n_items: int
    mean_degree: float  # interactions per user, train + valid + test
    n_intents: int = 8
    latent_dim: int = 16
    intents_per_user: float = 0.3  # Dirichlet concentration: small = few intents per user
    beta: float = 2.0  # how sharply a taste picks its items
    visual_dim: int = 4096
    text_dim: int = 384
    feature_noise: float = 1.0
    seed: int = 2023


PRESETS: dict[str, SyntheticSpec] = {
    # Clothing 39,387 / 23,033, 7.08 per user;  Sports 35,598 / 18,357, 8.32;  Baby 19,445 / 7,050, 8.27
    "synthetic-clothing": SyntheticSpec(n_users=1969, n_items=1152, mean_degree=7.08, seed=11),
    "synthetic-sports": SyntheticSpec(n_users=1780, n_items=918, mean_degree=8.32, seed=12),
    "synthetic-baby": SyntheticSpec(n_users=972, n_items=352, mean_degree=8.27, seed=13),
    # for tests: seconds, not minutes
    "synthetic-tiny": SyntheticSpec(
        n_users=160, n_items=90, mean_degree=9.0, n_intents=4, latent_dim=8, visual_dim=64, text_dim=32, seed=7
    ),
}


def generate(spec: SyntheticSpec, name: str = "synthetic") -> Dataset:
    rng = np.random.default_rng(spec.seed)
    U, I, r, K = spec.n_users, spec.n_items, spec.latent_dim, spec.n_intents
    centroids = rng.normal(size=(K, r))
    item_intent = rng.integers(0, K, size=I)
    item_f = centroids[item_intent] + 0.5 * rng.normal(size=(I, r))
    log_pop = rng.normal(scale=1.0, size=I)

    mix = rng.dirichlet(np.full(K, spec.intents_per_user), size=U)  # U x K
    taste = centroids[None] + 0.3 * rng.normal(size=(U, K, r))  # U x K x r
    logits = spec.beta * np.einsum("ukr,ir->uki", taste, item_f) / np.sqrt(r) + log_pop
    logits -= logits.max(axis=2, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=2, keepdims=True)
    prob = np.einsum("uk,uki->ui", mix, p)  # U x I

    extra = rng.geometric(1.0 / max(spec.mean_degree - 4.0, 1.0), size=U) - 1
    deg = np.minimum(5 + extra, I // 2)
    keys = np.log(prob + 1e-300) + rng.gumbel(size=(U, I))
    ranked = np.argsort(-keys, axis=1)
    take = np.arange(I)[None, :] < deg[:, None]
    users = np.repeat(np.arange(U), deg)
    items = ranked[take]
    split = random_split(users, rng)

    def project(dim: int) -> np.ndarray:
        w = rng.normal(size=(r, dim)) / np.sqrt(r)
        return item_f @ w + spec.feature_noise * rng.normal(size=(I, dim))

    features = {"v": np.maximum(project(spec.visual_dim), 0.0), "t": project(spec.text_dim)}
    return from_triples(
        name,
        users,
        items,
        split,
        U,
        I,
        features,
        synthetic=True,
        source=f"synthetic generator, seed {spec.seed} ({U} users, {I} items)",
    )
