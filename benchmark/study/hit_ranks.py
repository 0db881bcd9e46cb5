"""Where a model's hits land in its top 20, and how much its lists share (a diagnosis script).

    python -m benchmark.study.hit_ranks --data-root ../shared/data --dataset tiktok --models lightgcn mmil

For each model, its committed seed-0 record on the dataset (default protocol; with ``--tuned``, at
its configuration in ``results/tuned.json``) is retrained in a
scratch process (same spec, so the same weights; the test split is not read) and its full ranking of every test user is read:

- the rank of each hit (the first test item in the top 20), the share at rank 1 and in 1-5;
- how much the users' lists are one list: the overlap of each user's top 20 with the top 20 of
  the mean score over users, the number of distinct items in all top-5 lists and the share of
  top-5 slots the five most frequent items take, with those items' train and test popularity.

A model whose lists are mostly one shared list ranks like a popularity prior: its hits land at
the ranks that list leaves free.

With ``--per-epoch``, each model is instead trained from scratch for its record's epochs and, after
every validation, the shared list is measured on the validation users (the test split is never
read): the validation Recall@20, the overlap of each user's top 20 with the top 20 of the mean
score, how many of that shared top 20 changed since the last epoch, and how many validation hits
the shared top 20 alone would give; and, for scale, MostPop's validation Recall@20. A curve
whose swings follow the shared list's turnover moves because one list moves, for every user at
once.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from ..data import Dataset, load_dataset
from ..evaluator import evaluate
from ..model import Recommender
from ..registry import get_model
from ..trainer import seed_everything, train
from .spec import RunSpec
from .store import RunStore
from .tuning import load_choices, split_point, tuned_path

K = 20


def trained(spec: RunSpec, data: Dataset, epochs: int, probe=None):  # type: ignore[no-untyped-def]
    """The model of ``spec`` trained ``epochs`` epochs, best state restored (the same seed and
    settings give the same weights as the recorded run). ``probe(model, history)`` is called
    after every validation; it never stops the run."""
    mcfg, tcfg = spec.resolved()
    torch.set_num_threads(spec.threads)
    seed_everything(spec.seed)
    model = get_model(spec.model)(data, mcfg)

    def stop(history: list[dict[str, float]]) -> bool:
        if probe is not None:
            probe(model, history)
        return False

    train(model, data, replace(tcfg, max_epochs=epochs), spec.seed, log=None, stop=stop, read_test=False)
    return model


def top_lists(model, data: Dataset, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    """Each user's top K items (training items masked) and the mean score over the users."""
    was = model.training
    model.eval()
    tops, total = [], torch.zeros(data.n_items)
    with torch.no_grad():
        model.prepare_scoring()  # the user-independent part once, as the evaluator does
        for s in range(0, len(users), 1024):
            u = users[s : s + 1024]
            scores = model.score(torch.from_numpy(u)).float()
            total += scores.sum(0)
            rows, cols = data.train[u].nonzero()
            scores[torch.from_numpy(rows), torch.from_numpy(cols)] = -float("inf")
            tops.append(scores.topk(K, dim=1).indices.numpy())
    model.train(was)
    return np.concatenate(tops), (total / len(users)).numpy()


def describe(top: np.ndarray, mean_score: np.ndarray, data: Dataset, users: np.ndarray) -> list[str]:
    held = data.test[users]
    # (user, listed item) lookups in the sparse split: no users x items array
    in_test = held[np.arange(len(users))[:, None], top].toarray() > 0
    recall = float(
        np.mean(in_test.sum(axis=1) / np.asarray((held > 0).sum(axis=1)).ravel())
    )  # the evaluator's Recall@K
    hits = in_test.argmax(axis=1)[in_test.any(axis=1)] + 1  # the rank of each user's first hit
    train_pop, test_pop = (np.asarray(m.sum(0)).ravel() for m in (data.train, data.test))
    overlap = np.isin(top, np.argsort(-mean_score)[:K]).mean()
    counts = np.bincount(top[:, :5].ravel(), minlength=data.n_items)
    five = np.argsort(-counts)[:5]
    return [
        f"  recall@{K} {recall:.4f}, hit rate {len(hits) / len(users):.4f} (users with a hit); of their first hits: at rank 1 {np.mean(hits == 1):.1%}, at 1-5 "
        f"{np.mean(hits <= 5):.1%}, median rank {np.median(hits):.0f}",
        f"  overlap of a user's top {K} with the top {K} of the mean score: {overlap:.1%}; "
        f"{np.count_nonzero(counts)} distinct items in the top-5 lists, the 5 most frequent hold "
        f"{counts[five].sum() / counts.sum():.1%} of the slots",
        f"  those 5 items: train popularity {train_pop[five].astype(int).tolist()}, test popularity "
        f"{test_pop[five].astype(int).tolist()} (the most common test item: {int(test_pop.max())} users)",
    ]


class MostPop(Recommender):
    """Every user's unseen items ranked by training popularity: a parameter-free scorer, so its
    recall comes from the suite's evaluator with the models' tie rule (a tied item counts ahead)."""

    name = "mostpop"

    def __init__(self, train: sp.csr_matrix) -> None:
        nn.Module.__init__(self)  # no Dataset or Config: nothing to build or train
        self.register_buffer("popularity", torch.from_numpy(np.asarray(train.sum(0), dtype=np.float32).ravel()))

    def score(self, users: torch.Tensor) -> torch.Tensor:
        return self.popularity.repeat(len(users), 1)  # a copy: the evaluator writes its mask in place

    @property
    def device(self) -> torch.device:
        return self.popularity.device


def most_popular_recall(data: Dataset, split: str = "valid") -> float:
    """MostPop's Recall@K over the users with ``split`` items, training items masked."""
    return evaluate(MostPop(data.train), data, split, ks=(K,)).mean[f"recall@{K}"]


def trace_summary(rows: list[tuple[int, float, float, int, int]], skip: int = 4) -> str:
    """One line over the trace's rows (epoch, valid recall, overlap, shared-list items changed,
    shared-list hits), after the first ``skip`` epochs (the rise from initialisation)."""
    epoch, recall, overlap, changed, hits = (np.array(c, dtype=float) for c in zip(*rows[skip:]))
    best = int(epoch[recall.argmax()])
    return (
        f"  epochs {int(epoch[0])}-{int(epoch[-1])}: overlap {overlap.mean():.0%} ({overlap.min():.0%}-"
        f"{overlap.max():.0%}), shared top {K} changed {changed.mean():.1f} per epoch, corr(recall, "
        f"its valid hits) {np.corrcoef(recall, hits)[0, 1]:.2f}, mean |change of recall| "
        f"{np.abs(np.diff(recall)).mean():.4f}, mean recall before / after the best epoch {best}: "
        f"{recall[epoch < best].mean():.4f} / {recall[epoch > best].mean():.4f}"
    )


def epoch_trace(spec: RunSpec, data: Dataset, epochs: int) -> list[str]:
    """One line per validated epoch of ``spec`` trained from scratch (see the module docstring),
    after one with MostPop's validation Recall@K for scale, and a `trace_summary` line last."""
    users = np.flatnonzero(np.diff(data.valid.indptr) > 0)
    held = data.valid[users]
    lines = [f"  MostPop (training popularity) valid recall@{K} {most_popular_recall(data):.4f}"]
    rows: list[tuple[int, float, float, int, int]] = []
    previous: set[int] = set()
    metric = spec.resolved()[1].metric

    def measure(model, history: list[dict[str, float]]) -> None:  # type: ignore[no-untyped-def]
        nonlocal previous
        top, mean_score = top_lists(model, data, users)
        shared = np.argsort(-mean_score)[:K]
        changed = len(set(shared.tolist()) - previous) if previous else K
        previous = set(shared.tolist())
        # validation items are never training items, so the shared list's hits need no mask
        row = (
            history[-1]["epoch"],
            history[-1][f"valid_{metric}"],
            np.isin(top, shared).mean(),
            changed,
            int(held[:, shared].sum()),
        )
        lines.append(
            f"  epoch {row[0]:3d}  valid {metric} {row[1]:.4f}  overlap with the shared top {K} {row[2]:.1%}  "
            f"shared top {K} changed {row[3]:2d}  its valid hits {row[4]:4d}"
        )
        rows.append(row)

    trained(spec, data, epochs, probe=measure)  # the record's epochs: its early stop ends there too
    if len(rows) > 6:
        lines.append(trace_summary(rows))
    return lines


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", type=Path, required=True)
    p.add_argument("--dataset", default="tiktok")
    p.add_argument("--models", nargs="+", default=["lightgcn", "mmil"])
    p.add_argument("--per-epoch", action="store_true", help="trace the shared list epoch by epoch on validation")
    p.add_argument("--tuned", action="store_true", help="each model at its results/tuned.json configuration")
    args = p.parse_args(argv)
    choices = load_choices() if args.tuned else {}
    data = load_dataset(args.dataset, args.data_root)
    users = np.flatnonzero(np.diff(data.test.indptr) > 0)
    store = RunStore(data_root=args.data_root)
    for name in args.models:
        if args.tuned and (args.dataset, name) not in choices:
            raise SystemExit(f"no tuned configuration of {name} on {args.dataset} in {tuned_path()}")
        config, train_keys = split_point(choices.get((args.dataset, name), {}))
        spec = RunSpec(args.dataset, name, config=config, train=train_keys)
        record = store.get(spec)
        if record is None:
            raise SystemExit(f"no committed record of {spec.label()} in {store.directory}")
        if args.per_epoch:
            print(f"{name} (seed 0, {record.epochs_run} epochs, best {record.best_epoch}):", flush=True)
            print("\n".join(epoch_trace(spec, data, record.epochs_run)), flush=True)
            continue
        # its best epoch is the best of a run stopped there too: the restored weights are the same
        model = trained(spec, data, record.best_epoch)
        top, mean_score = top_lists(model, data, users)
        print(f"{name} (seed 0, best epoch {record.best_epoch} of {record.epochs_run}):")
        print("\n".join(describe(top, mean_score, data, users)))
        # a model that can say what its user vectors are made of (MMIL: its MLP part and ID residual)
        if parts := getattr(model, "user_vector_parts", None):
            print("  user vectors: " + ", ".join(f"{k} {v:.3f}" for k, v in parts(torch.from_numpy(users)).items()))


if __name__ == "__main__":
    main()
