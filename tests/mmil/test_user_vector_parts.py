"""MMIL's user-vector decomposition (the hit_ranks diagnosis reads it)."""

from __future__ import annotations

import torch

from benchmark.data import load_dataset
from mmil import MMIL
from mmil.config import MMILConfig


def test_parts_add_up_and_measure_alignment() -> None:
    torch.manual_seed(0)
    data = load_dataset("synthetic-tiny")
    model = MMIL(data, MMILConfig(dim=8, n_intents=2))
    users = torch.arange(data.n_users)
    parts = model.user_vector_parts(users)
    assert model.training  # it leaves the mode as it found it
    model.eval()
    tables = model.cached_scoring_state()["tables"]
    q = model.user_vectors(users, tables)
    e_u = model.user(users)
    assert parts["e_u norm"] == torch.linalg.vector_norm(e_u, dim=1).mean().item()
    assert abs(parts["f_p part norm"] - torch.linalg.vector_norm(q - e_u, dim=1).mean().item()) < 1e-6
    assert abs(parts["q_u one way"] - float(q.mean(0).norm() / q.norm(dim=1).mean())) < 1e-6
    assert 0.0 <= parts["e_u one way"] <= 1.0
