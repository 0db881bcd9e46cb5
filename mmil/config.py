"""MMIL's configuration and the Table 3 ablation variants (each a configuration of one model).

Defaults follow ``shared/docs/mmil.md``; where that page asks for a default chosen by
validation, the comment says what was chosen and on what evidence. Evidence gathered so far
(validation Recall@20 of the restored best epoch, one seed, 30-epoch cap, ``run_all.py --tune
mmil --grid ...``):

- lr 1e-3 vs 5e-3 on synthetic-clothing (20 epochs): 0.1859 vs 0.1856; kept 1e-3.
- r_temp {1, 5, 25} x modality_weights {transformer, uniform} on synthetic-baby: transformer at
  r_temp 1 or 5: 0.3436; at 25, and every uniform run: 0.3462. The gap is within one seed's
  noise, so r_temp stays 1 for now; mmil.md's finding that r_temp = 1 saturates r_u makes 25
  the first candidate of a TikTok sweep with three seeds (not run yet: a TikTok MMIL epoch
  takes about 28 s on one CPU thread); with three seeds on synthetic-baby it ties (below).
- t_assign, attn_temp, kl_mode, attn_scale: the values mmil.md measured (0.1, 0.1, marginal,
  cos); re-checked one at a time on synthetic-baby with three seeds (last item below).
- TikTok, Table 3 under the default protocol (uncapped, seeds 0-2, test Recall@20 / NDCG@20,
  mean ± std; ``run_all.py --ablation --data-root ../shared/data --datasets tiktok --tag tiktok``,
  results/table3-tiktok.md): mmil 0.0817 ± 0.0036 / 0.0281 ± 0.0024, w/o IL 0.0715 ± 0.0043 /
  0.0260 ± 0.0009, w/o MA 0.0846 ± 0.0025 / 0.0300 ± 0.0004, w/o OC (theta 0) 0.0799 ± 0.0057 /
  0.0277 ± 0.0013, w/o IC (gamma 0) 0.0788 ± 0.0135 / 0.0283 ± 0.0076. On real features the
  intent learner helps (about -0.01 Recall@20 without it); theta and gamma make no difference
  beyond the seed spread; the single-attention "w/o MA" is at least as good as the modality-aware
  attention (p 0.057 over users, 0.061 over seeds on Recall@20). The defaults stay those of
  mmil.md: this evidence does not favour another value clearly enough to change them. An MMIL
  epoch there takes about 28 s on one CPU thread, which is why no wider TikTok sweep was run.
- synthetic-baby, one factor at a time, seeds 0-2, default protocol (uncapped), validation
  Recall@20 mean ± std: default 0.3464 ± 0.0021; kl_mode=sample 0.3488 ± 0.0014; attn_scale=dot
  0.3455 ± 0.0024; t_assign=1 0.3707 ± 0.0230; attn_temp=1 0.3450 ± 0.0036; orth_form=dot
  0.3457 ± 0.0014; r_temp=25 0.3460 ± 0.0013. Only t_assign=1 stands out (and it is noisy; mmil.md
  found 1 and 10 left the assignment uniform): the first candidate for a TikTok check before the
  default changes. The rest are within a seed's noise, so the mmil.md values stay.
- TikTok check of t_assign=1 (default protocol, seeds 0 and 1, ``benchmark.runs.execute`` on
  ``RunSpec("tiktok", "mmil", seed, config={"t_assign": 1.0})``; records in results/runs):
  validation Recall@20 0.0751 and 0.0682 against the default's 0.0882 and 0.0944 (best epochs 32
  and 7 against 20 and 24). The synthetic-baby gain does not carry to real features, so
  t_assign stays 0.1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from benchmark.config import ConfigError


@dataclass(frozen=True)
class MMILConfig:
    dim: int = 64  # d, embedding size (paper default 64)
    n_intents: int = 10  # K, intents per user (paper grid 5..100)
    max_history: int = 50  # L_max, history items per user (most recent / seeded sample)
    history_seed: int = 0  # seed of the history sample where the data has no timestamps
    dropout: float = 0.1  # dropout of the modal encoders and the transformer block
    # intent representation learner (Sec. 4.2)
    t_assign: float = 0.1  # temperature of the soft assignment (1 or 10 stayed uniform)
    proto_init: str = "random"  # "random" (xavier) or "kmeans" on the initial f(z_u)
    kl_mode: str = "marginal"  # "marginal": KL(batch-mean s || uniform); "sample": printed Eq. 16-17
    orth_form: str = "sq_cos"  # "sq_cos": sum cos(p_m, p_n)^2 (amended); "dot": printed Eq. 6
    # modal-aware intents (Sec. 4.3)
    modality_weights: str = "transformer"  # "transformer" (Eq. 9) or "uniform" (1/|M| each)
    r_temp: float = 1.0  # temperature of the modality-weight softmax
    attn_scale: str = "cos"  # "cos": cos / attn_temp (amended); "dot": printed q.k / sqrt(d)
    attn_temp: float = 0.1  # temperature of the cosine intent-to-history attention
    # contrastive views (Sec. 4.4)
    keep_prob: float = 0.8  # Bernoulli keep probability of a history item in a view
    tau: float = 0.5  # InfoNCE temperature (paper grid 0.005 .. 50)
    # objective (Eq. 18)
    loss: str = "bce"  # "bce" (Eq. 15; measured better) or "bpr"
    kl_weight: float = 1.0  # weight of L_kl
    mu: float = 1e-2  # weight of L_d (paper grid 1e-4 .. 1)
    theta: float = 1e-2  # weight of L_c
    gamma: float = 1e-1  # weight of L_cl
    reg: float = 1e-4  # lambda, L2 on the batch's ID embeddings / batch size
    # ablation switches (Table 3)
    use_intents: bool = True  # False = "w/o IL": q_u = f_p(z_u) + e_u, no intent terms
    modal_aware: bool = True  # False = "w/o MA": one attention over the ID modality, no r_u


CHOICES: dict[str, tuple[str, ...]] = {
    "proto_init": ("random", "kmeans"),
    "kl_mode": ("marginal", "sample"),
    "orth_form": ("sq_cos", "dot"),
    "modality_weights": ("transformer", "uniform"),
    "attn_scale": ("cos", "dot"),
    "loss": ("bce", "bpr"),
}

# Table 3: the variant name -> the config overrides that make it.
VARIANTS: dict[str, dict[str, Any]] = {
    "mmil": {},
    "w/o IL": {"use_intents": False},
    "w/o MA": {"modal_aware": False},
    "w/o OC": {"theta": 0.0},
    "w/o IC": {"gamma": 0.0},
}

# mmil.md 6b: MMIL's validation curve is noisy, so early stopping waits 30 epochs, with patience 20.
# Its epoch cap is every model's (300; mmil.md asks for at least 100): at a cap of 100, Last.fm-2K's
# first two search points were still rising at their last epoch (best epochs 100 and 95 of 100,
# validation Recall@20 .2856 -> .2933 over epochs 90-100), a limit no other model had.
TRAIN_DEFAULTS: dict[str, Any] = {"lr": 1e-3, "batch_size": 2048, "min_epochs": 30, "patience": 20}


def check(cfg: MMILConfig) -> None:
    for key, allowed in CHOICES.items():
        if getattr(cfg, key) not in allowed:
            raise ConfigError(f"mmil config: {key}={getattr(cfg, key)!r}; allowed: {list(allowed)}")
    if cfg.n_intents < 1 or cfg.dim < 1 or not 0 < cfg.keep_prob <= 1:
        raise ConfigError("mmil config: n_intents and dim must be >= 1 and keep_prob in (0, 1]")
    for key in ("t_assign", "r_temp", "attn_temp", "tau"):
        if getattr(cfg, key) <= 0:
            raise ConfigError(f"mmil config: {key} must be > 0")
