"""MMIL, split by concern: `intents` (prototypes, assignment, L_d, L_c, L_kl), `modal` (modal
encoders, modality weights, intent-to-history attention), `views` (history subsampling and the
multi-intent InfoNCE), `model` (the recommender), `config` (defaults and ablation variants)."""

from .config import VARIANTS, MMILConfig
from .model import MMIL

__all__ = ["MMIL", "MMILConfig", "VARIANTS"]
