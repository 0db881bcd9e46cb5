"""--precision bf16: every model trains under autocast (sparse products stay float32, since the
CPU has no bfloat16 sparse kernel) and its weights stay float32."""

from __future__ import annotations

import math

import pytest
import torch

from benchmark.config import TrainConfig, build_config
from benchmark.data import load_dataset
from benchmark.registry import get_model, model_names
from benchmark.sampling import interaction_keys
from benchmark.trainer import make_optimizer, run_epoch, seed_everything


@pytest.mark.parametrize("model", model_names())
def test_one_bf16_epoch(model: str) -> None:
    import numpy as np

    data = load_dataset("synthetic-tiny", None)
    cls = get_model(model)
    seed_everything(0)
    net = cls(data, build_config(cls.Config))
    cfg = build_config(TrainConfig, cls.train_defaults)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    net.train()
    net.start_epoch(1)
    row = run_epoch(
        net,
        data,
        make_optimizer(net, cfg),
        cfg,
        interaction_keys(data.train),
        np.random.default_rng(0),
        precision="bf16",
    )
    assert math.isfinite(row["loss"])
    after = net.state_dict()
    assert all(v.dtype == before[k].dtype for k, v in after.items())
    assert any(not torch.equal(v, before[k]) for k, v in after.items())  # it did learn
