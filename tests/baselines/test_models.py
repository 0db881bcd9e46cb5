"""Contract tests run against every registered model: one epoch runs, the loss falls, a seed
makes a run repeatable, and ``score`` has the right shape and is finite."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.config import ConfigError, TrainConfig, build_config
from benchmark.data import DataError, from_triples, load_dataset
from benchmark.registry import UnknownModel, get_model, model_names
from benchmark.study.spec import RunSpec
from benchmark.trainer import seed_everything, train

MODELS = model_names()
FAST = {"max_epochs": 1, "batch_size": 256, "eval_every": 1}


def fit(name: str, epochs: int, seed: int = 0, **overrides):  # type: ignore[no-untyped-def]
    data = load_dataset("synthetic-tiny")
    cls = get_model(name)
    seed_everything(seed)
    model = cls(data, build_config(cls.Config, overrides))
    tcfg = build_config(TrainConfig, {**cls.train_defaults, **FAST, "max_epochs": epochs, "patience": 100})
    return model, train(model, data, tcfg, seed, log=None)


@pytest.mark.parametrize("name", MODELS)
def test_one_epoch_and_score(name: str) -> None:
    model, res = fit(name, 1)
    data = load_dataset("synthetic-tiny")
    model.eval()
    with torch.no_grad():
        model.prepare_scoring()
        s = model.score(torch.arange(5))
    assert s.shape == (5, data.n_items)
    assert torch.isfinite(s).all()
    assert res.epochs_run == 1


@pytest.mark.parametrize("name", MODELS)
def test_loss_falls(name: str) -> None:
    _, res = fit(name, 8)
    first, last = res.history[0]["loss"], min(r["loss"] for r in res.history[-3:])
    assert last < first


@pytest.mark.parametrize("name", MODELS)
def test_same_seed_same_numbers(name: str) -> None:
    _, a = fit(name, 2, seed=5)
    _, b = fit(name, 2, seed=5)
    # equal up to float32 rounding: a multi-threaded reduction may differ in the last bit
    for ra, rb in zip(a.history, b.history, strict=True):
        assert ra.keys() == rb.keys()
        np.testing.assert_allclose([ra[k] for k in ra], [rb[k] for k in ra], rtol=1e-5)
    np.testing.assert_allclose(list(a.test.mean.values()), list(b.test.mean.values()), rtol=1e-5)
    _, c = fit(name, 2, seed=6)
    assert c.history[0]["loss"] != a.history[0]["loss"]


def test_unknown_model_and_key() -> None:
    with pytest.raises(UnknownModel, match="lightgcn"):
        get_model("nope")
    with pytest.raises(ConfigError, match="unknown key"):
        build_config(get_model("lightgcn").Config, {"layers": 2})
    # a grid point's key that is neither the model's nor the trainer's: both lists are named
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['lrr'\].*n_layers.*or a training key.*'lr'"):
        RunSpec(model="lightgcn", dataset="synthetic-tiny", config={"lrr": 1e-3}).resolved()


@pytest.mark.parametrize("name", [m for m in MODELS if get_model(m).requires_features])
def test_feature_models_refuse_featureless_data(name: str) -> None:
    u = np.array([0, 0, 0, 1, 1, 1])
    i = np.array([0, 1, 2, 1, 2, 0])
    s = np.array([0, 1, 2, 0, 1, 2])
    data = from_triples("plain", u, i, s, 2, 3, source="built from three triples")
    cls = get_model(name)
    with pytest.raises(DataError, match=r"needs item features.*\(its source: built from three triples\)"):
        cls(data, build_config(cls.Config))
