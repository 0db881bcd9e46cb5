"""LightGCN's scores on a 3-node training graph, checked against values worked out by hand.

The data: 2 users, 2 items. Training interactions (u0, i0) and (u0, i1): the training graph is
the 3-node star i0 - u0 - i1; u1 has no training interaction (valid (u1, i0), test (u1, i1)), so
it is an isolated node of the adjacency and keeps only its layer-0 share of the mean.

Node order of the joint table (users first, then items): [u0, u1, i0, i1].

    A (bipartite [[0, R], [R^T, 0]], no self loops)     degrees
          u0 u1 i0 i1
    u0  [  0  0  1  1 ]                                  d(u0) = 2
    u1  [  0  0  0  0 ]                                  d(u1) = 0  (row stays zero)
    i0  [  1  0  0  0 ]                                  d(i0) = 1
    i1  [  1  0  0  0 ]                                  d(i1) = 1

    A_hat = D^-1/2 A D^-1/2: every edge is u0 - i, weight 1 / sqrt(2 * 1) = 1/sqrt(2) = 0.70710678
          u0          u1  i0          i1
    u0  [ 0           0   0.70710678  0.70710678 ]
    u1  [ 0           0   0           0          ]
    i0  [ 0.70710678  0   0           0          ]
    i1  [ 0.70710678  0   0           0          ]

Ego embeddings E^(0) (dim 2), set by the test:
    u0 = [1, 2]   u1 = [3, -1]   i0 = [2, -1]   i1 = [0, 1]

E^(k+1) = A_hat E^(k):
    E^(1): u0 = 0.70710678 * (i0 + i1) = 0.70710678 * [2, 0]        = [1.41421356, 0]
           u1 = [0, 0]
           i0 = i1 = 0.70710678 * u0 = 0.70710678 * [1, 2]         = [0.70710678, 1.41421356]
    E^(2): u0 = 0.70710678 * ([0.70710678, 1.41421356] * 2)         = [1, 2]
           u1 = [0, 0]
           i0 = i1 = 0.70710678 * [1.41421356, 0]                  = [1, 0]
    E^(3): u0 = 0.70710678 * ([1, 0] * 2)                          = [1.41421356, 0]
           u1 = [0, 0]
           i0 = i1 = 0.70710678 * [1, 2]                           = [0.70710678, 1.41421356]
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from baselines.lightgcn import LightGCN
from benchmark.data import from_triples

EGO = [
    [1.0, 2.0],  # u0
    [3.0, -1.0],  # u1
    [2.0, -1.0],  # i0
    [0.0, 1.0],
]  # i1

# n_layers = 3 (the default): E = (E^(0) + E^(1) + E^(2) + E^(3)) / 4
#   u0 = ([1, 2] + [1.41421356, 0] + [1, 2] + [1.41421356, 0]) / 4        = [1.20710678, 1.0]
#   u1 = ([3, -1] + 0 + 0 + 0) / 4                                        = [0.75, -0.25]
#   i0 = ([2, -1] + [0.70710678, 1.41421356] + [1, 0] + [0.70710678, 1.41421356]) / 4
#      = [4.41421356, 1.82842712] / 4                                     = [1.10355339, 0.45710678]
#   i1 = ([0, 1] + [0.70710678, 1.41421356] + [1, 0] + [0.70710678, 1.41421356]) / 4
#      = [2.41421356, 3.82842712] / 4                                     = [0.60355339, 0.95710678]
# scores <u, i>:
#   (u0, i0) = 1.20710678 * 1.10355339 + 1.0 * 0.45710678      = 1.33210678 + 0.45710678 = 1.78921356
#   (u0, i1) = 1.20710678 * 0.60355339 + 1.0 * 0.95710678      = 0.72855339 + 0.95710678 = 1.68566017
#   (u1, i0) = 0.75 * 1.10355339 - 0.25 * 0.45710678           = 0.82766504 - 0.11427670 = 0.71338835
#   (u1, i1) = 0.75 * 0.60355339 - 0.25 * 0.95710678           = 0.45266504 - 0.23927670 = 0.21338835
# (exactly: 3/8 + sqrt2, 5/8 + 3/4 sqrt2, 5/8 + sqrt2/16, 1/8 + sqrt2/16)
EXPECTED_3 = [[1.78921356, 1.68566017], [0.71338835, 0.21338835]]

# n_layers = 1: E = (E^(0) + E^(1)) / 2
#   u0 = ([1, 2] + [1.41421356, 0]) / 2                   = [1.20710678, 1.0]
#   u1 = [3, -1] / 2                                      = [1.5, -0.5]
#   i0 = ([2, -1] + [0.70710678, 1.41421356]) / 2         = [1.35355339, 0.20710678]
#   i1 = ([0, 1] + [0.70710678, 1.41421356]) / 2          = [0.35355339, 1.20710678]
# scores <u, i>:
#   (u0, i0) = 1.20710678 * 1.35355339 + 1.0 * 0.20710678   = 1.63388348 + 0.20710678 = 1.84099026
#   (u0, i1) = 1.20710678 * 0.35355339 + 1.0 * 1.20710678   = 0.42677670 + 1.20710678 = 1.63388348
#   (u1, i0) = 1.5 * 1.35355339 - 0.5 * 0.20710678          = 2.03033009 - 0.10355339 = 1.92677670
#   (u1, i1) = 1.5 * 0.35355339 - 0.5 * 1.20710678          = 0.53033009 - 0.60355339 = -0.07322330
# (exactly: 1/4 + 9/8 sqrt2, 3/4 + 5/8 sqrt2, 7/4 + sqrt2/8, -1/4 + sqrt2/8)
EXPECTED_1 = [[1.84099026, 1.63388348], [1.92677670, -0.07322330]]


def star_data():
    users = np.array([0, 0, 1, 1])
    items = np.array([0, 1, 0, 1])
    split = np.array([0, 0, 1, 2])  # train (u0,i0), (u0,i1); valid (u1,i0); test (u1,i1)
    return from_triples("star", users, items, split, n_users=2, n_items=2)


def hand_model(n_layers: int) -> LightGCN:
    model = LightGCN(star_data(), LightGCN.Config(dim=2, n_layers=n_layers))
    with torch.no_grad():
        model.embedding.weight.copy_(torch.tensor(EGO))
    return model


@pytest.mark.parametrize("n_layers, expected", [(3, EXPECTED_3), (1, EXPECTED_1)], ids=["3-layers", "1-layer"])
def test_lightgcn_scores_match_hand_computation(n_layers: int, expected: list[list[float]]) -> None:
    model = hand_model(n_layers)
    model.eval()
    with torch.no_grad():  # as the evaluator scores
        model.prepare_scoring()
        got = model.score(torch.tensor([0, 1]))
    assert got.shape == (2, 2)
    for row_got, row_want in zip(got.tolist(), expected):
        assert row_got == pytest.approx(row_want, abs=1e-6)


def test_lightgcn_default_is_three_layers_and_training_forward_agrees() -> None:
    assert LightGCN.Config().n_layers == 3
    model = hand_model(LightGCN.Config().n_layers)
    model.train()
    u, i = model()  # the differentiable path used in training gives the same tables
    for row_got, row_want in zip((u @ i.T).tolist(), EXPECTED_3):
        assert row_got == pytest.approx(row_want, abs=1e-6)
    # the layer mean itself, also by hand (see EXPECTED_3's comment)
    assert u.tolist()[0] == pytest.approx([1.20710678, 1.0], abs=1e-6)
    assert u.tolist()[1] == pytest.approx([0.75, -0.25], abs=1e-6)
    assert i.tolist()[0] == pytest.approx([1.10355339, 0.45710678], abs=1e-6)
    assert i.tolist()[1] == pytest.approx([0.60355339, 0.95710678], abs=1e-6)
