"""MMIL: the properties listed in mmil.md section 8, plus training, variants and scoring."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.config import TrainConfig, build_config
from benchmark.data import from_triples, load_dataset
from benchmark.evaluator import evaluate
from benchmark.model import Batch
from benchmark.trainer import seed_everything, train
from mmil import MMIL, VARIANTS, MMILConfig
from mmil.intents import IntentLearner
from mmil.views import bernoulli_view, multi_intent_infonce


def tiny() -> object:
    return load_dataset("synthetic-tiny")


def make(seed: int = 0, **overrides) -> MMIL:  # type: ignore[no-untyped-def]
    seed_everything(seed)
    return MMIL(tiny(), build_config(MMILConfig, overrides))


def batch(data, n: int = 64, seed: int = 0) -> Batch:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    coo = data.train.tocoo()
    pick = rng.choice(coo.nnz, n, replace=False)
    return Batch(
        torch.from_numpy(coo.row[pick].astype(np.int64)),
        torch.from_numpy(coo.col[pick].astype(np.int64)),
        torch.from_numpy(rng.integers(0, data.n_items, n)),
    )


def fit(model: MMIL, epochs: int) -> None:
    cfg = build_config(TrainConfig, {"max_epochs": epochs, "batch_size": 256, "min_epochs": 0, "patience": 100})
    train(model, tiny(), cfg, 0, log=None)


def test_shapes_and_padding() -> None:
    m = make()
    data = tiny()
    users = torch.arange(8)
    tables = m.item_tables(torch.arange(data.n_items))
    hist = m.hist[users]
    mask = hist != data.n_items
    enc = m.encode(users, hist.clamp_max(data.n_items - 1), mask, tables)
    assert torch.allclose(enc["s"].sum(1), torch.ones(8))
    assert enc["H"].shape == (8, m.config.n_intents, m.config.dim)
    idx = hist.clamp_max(data.n_items - 1)
    v, attn = m.attention["c"](tables["logits"]["c"][idx], tables["emb"]["c"][idx], mask)
    assert v.shape == (8, m.config.n_intents, m.config.dim)
    assert (attn[~mask.unsqueeze(1).expand_as(attn)] == 0).all()
    assert torch.allclose(attn.sum(-1)[mask.any(1)], torch.ones(1))


def test_empty_history_is_finite_and_zero() -> None:
    # user 1's only training item is 0: training on (1, 0) leaves it an empty history
    u = np.array([0, 0, 0, 0, 1, 1, 1])
    i = np.array([0, 1, 2, 3, 0, 1, 2])
    s = np.array([0, 0, 1, 2, 0, 1, 2])
    rng = np.random.default_rng(0)
    data = from_triples("one", u, i, s, 2, 4, {"v": rng.random((4, 5)), "t": rng.random((4, 3))})
    seed_everything(0)
    m = MMIL(data, MMILConfig(dim=8, n_intents=3))
    out = m.loss(Batch(torch.tensor([1, 0]), torch.tensor([0, 1]), torch.tensor([3, 3])))
    assert all(torch.isfinite(v) for v in out.values())
    tables = m.item_tables(torch.arange(4))
    enc = m.encode(
        torch.tensor([1]),
        torch.zeros(1, m.hist.shape[1], dtype=torch.long),
        torch.zeros(1, m.hist.shape[1], dtype=torch.bool),
        tables,
    )
    assert torch.isfinite(enc["q"]).all() and (enc["H"] == 0).all()


def test_intents_distinct_after_training_and_assignment_sharpens() -> None:
    m = make()
    fit(m, 6)
    d = m.intent_diagnostics(torch.arange(tiny().n_users))
    assert d["intent_cosine"] < 0.9
    assert d["assignment_entropy"] < 0.99


def test_printed_attention_gives_identical_intents() -> None:
    """The reason for the amendment: with the printed /sqrt(d) dot product all intents of a
    user attend (almost) uniformly, so they come out (almost) the same vector."""
    m = make(attn_scale="dot")
    d = m.intent_diagnostics(torch.arange(40))
    amended = make(attn_scale="cos").intent_diagnostics(torch.arange(40))
    assert d["intent_cosine"] > 0.99 > amended["intent_cosine"]


def test_k1_and_orthogonality_values() -> None:
    il = IntentLearner(1, 4, 0.1, "marginal", "sq_cos")
    s, _ = il.assign(torch.randn(5, 4))
    assert il.orthogonality_loss().item() == 0.0
    assert il.kl_loss(s).item() == pytest.approx(0.0, abs=1e-6)
    il = IntentLearner(3, 3, 0.1, "marginal", "sq_cos")
    with torch.no_grad():
        il.prototypes.copy_(torch.eye(3) * 2)
    assert il.orthogonality_loss().item() == pytest.approx(0.0, abs=1e-7)
    with torch.no_grad():
        il.prototypes.copy_(torch.ones(3, 3))
    assert il.orthogonality_loss().item() == pytest.approx(3 * 2 / 2)


def test_kl_modes() -> None:
    il = IntentLearner(4, 3, 0.1, "marginal", "sq_cos")
    onehot = torch.eye(4)  # every user on its own intent: the marginal is uniform
    assert il.kl_loss(onehot).item() == pytest.approx(0.0, abs=1e-6)
    il.kl_mode = "sample"
    uniform = torch.full((4, 4), 0.25)
    assert il.kl_loss(uniform).item() == pytest.approx(-np.log(4), rel=1e-5)
    assert il.kl_loss(onehot).item() > il.kl_loss(uniform).item()


def test_contrastive_identical_views_lower() -> None:
    g = torch.Generator().manual_seed(0)
    h = torch.randn(6, 4, 8, generator=g)
    other = torch.randn(6, 4, 8, generator=g)
    assert multi_intent_infonce(h, h, 0.5) < multi_intent_infonce(h, other, 0.5)


def test_views_keep_at_least_one() -> None:
    mask = torch.tensor([[True, True, False], [True, False, False], [False, False, False]])
    for s in range(20):
        keep = bernoulli_view(mask, 0.01, torch.Generator().manual_seed(s))
        assert keep[0].sum() >= 1 and keep[1, 0] and not keep[2].any()
        assert not (keep & ~mask).any()


def test_leakage_rule() -> None:
    """The history input of an example never holds its own positive item."""
    m = make()
    data = tiny()
    seen = {}
    orig = m.encode

    def spy(users, idx, mask, tables, **kw):  # type: ignore[no-untyped-def]
        seen.setdefault("first", (idx, mask))
        return orig(users, idx, mask, tables, **kw)

    m.encode = spy  # type: ignore[method-assign]
    b = batch(data)
    m.loss(b)
    idx, mask = seen["first"]
    uniq = torch.unique(torch.cat([m.hist[b.users].reshape(-1), b.pos, b.neg]))
    items = uniq[idx]
    assert not ((items == b.pos.unsqueeze(1)) & mask).any()
    # and the positive was in the raw history of some example, so the rule did something
    assert (m.hist[b.users] == b.pos.unsqueeze(1)).any()


def test_every_term_gets_gradient() -> None:
    m = make()
    out = m.loss(batch(tiny()))
    for term in ("l_p", "l_kl", "l_d", "l_c", "l_cl"):
        m.zero_grad()
        out[term].backward(retain_graph=True)
        grads = [p.grad.abs().sum() for p in m.parameters() if p.grad is not None]
        assert grads and sum(grads) > 0, term


def _step(m: MMIL) -> dict[str, torch.Tensor]:
    before = {k: v.clone() for k, v in m.state_dict().items()}
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    m.loss(batch(tiny()))["loss"].backward()
    opt.step()
    return before


def test_variants_leave_unused_parameters_unchanged() -> None:
    # w/o MA and w/o IL do not even build the modules they turn off (a step still runs)
    m = make(modal_aware=False)
    _step(m)
    assert not hasattr(m, "weights")
    assert set(m.attention) == {"c"}
    m = make(use_intents=False)
    _step(m)
    assert not hasattr(m, "intents")
    m = make()
    before = _step(m)
    changed = [k for k, v in m.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.startswith("weights.") for k in changed) and "intents.prototypes" in changed


def test_gamma_zero_skips_contrastive_branch() -> None:
    m = make(gamma=0.0)

    def boom(*a, **k):  # type: ignore[no-untyped-def]
        raise AssertionError("contrastive branch computed with gamma = 0")

    m.contrastive_loss = boom  # type: ignore[method-assign]
    out = m.loss(batch(tiny()))
    assert "l_cl" not in out


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_each_variant_trains(variant: str) -> None:
    m = make(**VARIANTS[variant])
    cfg = build_config(TrainConfig, {"max_epochs": 2, "batch_size": 256})
    res = train(m, tiny(), cfg, 0, log=None)
    assert np.isfinite(res.history[-1]["loss"])


def test_trained_beats_untrained() -> None:
    data = tiny()
    untrained = evaluate(make(seed=1), data, "valid").mean["recall@20"]
    m = make(seed=1)
    fit(m, 8)
    assert evaluate(m, data, "valid").mean["recall@20"] > untrained + 0.05


def test_scoring_in_batches_equals_one_batch() -> None:
    m = make()
    m.eval()
    users = torch.arange(tiny().n_users)
    with torch.no_grad():
        m.prepare_scoring()
        whole = m.score(users)
        import mmil.model as mm

        old = mm.SCORE_CHUNK
        mm.SCORE_CHUNK = 7
        try:
            parts = torch.cat([m.score(users[s : s + 13]) for s in range(0, len(users), 13)])
        finally:
            mm.SCORE_CHUNK = old
    assert torch.allclose(whole, parts, atol=1e-5)


def test_id_only_dataset_works() -> None:
    u = np.array([0, 0, 0, 1, 1, 1, 1])
    i = np.array([0, 1, 2, 1, 2, 0, 3])
    s = np.array([0, 1, 2, 0, 0, 1, 2])
    data = from_triples("ids", u, i, s, 2, 4)
    seed_everything(0)
    m = MMIL(data, MMILConfig(dim=8, n_intents=2))
    assert m.describe()["modalities"] == ["c"]
    out = m.loss(Batch(torch.tensor([0, 1]), torch.tensor([0, 1]), torch.tensor([3, 3])))
    assert torch.isfinite(out["loss"])


def test_kmeans_init_runs() -> None:
    m = make(proto_init="kmeans")
    assert torch.isfinite(m.intents.prototypes).all()
