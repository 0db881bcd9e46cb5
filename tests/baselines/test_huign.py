"""HUIGN: assignments are row-stochastic; the item graph sees training interactions only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from baselines.huign import co_interaction_graph, parse_levels
from benchmark.config import build_config
from benchmark.data import from_triples, load_dataset
from benchmark.registry import get_model
from benchmark.trainer import seed_everything


def test_assignments_row_stochastic_and_shapes() -> None:
    data = load_dataset("synthetic-tiny")
    cls = get_model("huign")
    seed_everything(0)
    model = cls(data, build_config(cls.Config, {"levels": [16, 4, 2]}))
    q, assignments, entropy, independence = model.intents()
    sizes = [(data.n_items, 16), (16, 4), (4, 2)] * len(data.modalities)
    assert [tuple(s.shape) for s in assignments] == sizes
    for s in assignments:
        assert (s >= 0).all()
        torch.testing.assert_close(s.sum(1), torch.ones(s.shape[0]))
    assert q.shape == (data.n_items, 22 * len(data.modalities))
    assert torch.isfinite(entropy) and torch.isfinite(independence)


def test_levels_accept_string_and_refuse_junk() -> None:
    assert parse_levels("32,8,4") == parse_levels((32, 8, 4)) == parse_levels([32, 8, 4]) == (32, 8, 4)
    with pytest.raises(ValueError, match="levels"):
        parse_levels("32,x")


def test_co_interaction_graph_uses_training_interactions_only() -> None:
    # user 0: items 0, 1 in train, item 2 in valid; user 1: items 3, 4 train, item 0 in test;
    # user 2: items 1, 2 in train only as a pair with item 5 in test
    u = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    i = np.array([0, 1, 2, 3, 4, 0, 1, 3, 5])
    s = np.array([0, 0, 1, 0, 0, 2, 0, 0, 2])
    data = from_triples("co", u, i, s, 3, 6, {"v": np.eye(6, dtype=np.float32)})
    a = co_interaction_graph(data.train, top_k=0).to_dense().numpy()
    expected = {(0, 1), (3, 4), (1, 3)}
    got = {(int(r), int(c)) for r, c in zip(*np.nonzero(a)) if r < c}
    assert got == expected
    assert np.allclose(a, a.T) and np.diag(a).sum() == 0
    assert a[0, 2] == 0 and a[0, 3] == 0 and a[1, 5] == 0  # valid / test co-interactions absent
    # threshold: two common users needed -> no link here
    assert co_interaction_graph(data.train, min_co_users=2).values().numel() == 0
    model = get_model("huign")(data, build_config(get_model("huign").Config))
    torch.testing.assert_close(model.item_adj.to_dense(), torch.from_numpy(a))


def test_co_interaction_counts_match_dense_reference() -> None:
    data = load_dataset("synthetic-tiny")
    r = data.train.toarray()
    co = r.T @ r
    np.fill_diagonal(co, 0)
    for k in (1, 2):
        a = co_interaction_graph(data.train, min_co_users=k).to_dense().numpy()
        np.testing.assert_array_equal(a, (co >= k).astype(np.float32))

    # top_k: each row keeps its k items with most common users, ties to the lower item id
    k = 3
    a = co_interaction_graph(data.train, min_co_users=1, top_k=k).to_dense().numpy()
    for i in range(data.n_items):
        cand = np.flatnonzero(co[i] >= 1)
        best = cand[np.lexsort((cand, -co[i, cand]))][:k]
        np.testing.assert_array_equal(np.flatnonzero(a[i]), np.sort(best))
