"""`Recommender.self_trained`: a submodule a model trains with an optimiser of its own stays out of
`parameters()` (so out of the trainer's optimiser) and in `state_dict` (so in checkpoints)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from benchmark.config import TrainConfig, build_config
from benchmark.data import from_triples
from benchmark.model import Recommender
from benchmark.trainer import make_optimizer


class WithSide(Recommender):
    self_trained = ("side",)

    def __init__(self) -> None:
        u, i, s = np.array([0, 1, 0, 1, 0, 1]), np.array([0, 1, 1, 0, 2, 2]), np.array([0, 0, 1, 1, 2, 2])
        super().__init__(from_triples("tiny", u, i, s, 2, 3, source="six triples"), None)
        self.main = nn.Linear(2, 2)
        self.side = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
        self.side_lr = nn.Linear(1, 1)  # its name starts with "side" but it is not the submodule


def test_self_trained_parameters_are_hidden_from_the_optimiser_not_from_the_state() -> None:
    m = WithSide()
    assert [n for n, _ in m.named_parameters()] == ["main.weight", "main.bias", "side_lr.weight", "side_lr.bias"]
    opt = make_optimizer(m, build_config(TrainConfig, {}))
    held = {id(p) for g in opt.param_groups for p in g["params"]}
    assert held == {id(p) for p in m.parameters()} and all(id(p) not in held for p in m.side.parameters())
    assert {"side.0.weight", "side.1.bias", "main.weight"} <= set(m.state_dict())
    # only the model's own listing hides them: torch walks a parent module's children directly
    parent = nn.ModuleDict({"model": m})
    assert any(n.startswith("model.side.") for n, _ in parent.named_parameters())
    assert torch.equal(m.state_dict()["side.0.weight"], m.side[0].weight)
