"""A model's grid searched on the validation split, with the points clearly behind stopped early.

Every grid point is one run (``RunSpec.search`` names the search), trained in a fixed order by
the shared trainer. After each validation its best validation metric so far is reported to
Optuna's `SuccessiveHalvingPruner` (asynchronous successive halving: at epochs ``min_epochs``,
``min_epochs * reduction``, ... a point goes on only if it is among the best ``1/reduction`` of
the points that reached that epoch, or the best of them while fewer than ``2 * reduction``
have). A pruned point's run ends there; every run of the search, pruned or finished, is written
to the run store, so the search is auditable (each record's history shows where it stopped)
and resumable: a rerun replays the recorded points through the pruner, which rebuilds its state
exactly, and trains only what is missing. A point already run outside the search (a default
Table 2 run at the same settings) is not trained again: its first epochs are exactly those the
search would train, so its record is replayed through the pruner and cut where it stops. A search's runs never read the test split
(`trainer.train(read_test=False)`); the choice is the finished point with the best validation
metric of its restored best epoch. Its training is not repeated either: its final state becomes
the checkpoint of the same point run outside the search (seed 0 of the tuned tables), which
reads the test split once from it, and whose record names the search run (`continued_from`).

Optuna is used for the pruning rule only (its in-memory study is rebuilt from the records each
time), because its trial storage cannot hold what a record holds and the run store is the one
place results live.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ..trainer import hand_over
from .execute import run_one
from .record import Record
from .spec import RunSpec
from .store import RunStore

Point = dict[str, Any]


@dataclass(frozen=True)
class Pruning:
    """Successive halving on the validation metric, in epochs."""

    # the first rung (`for_model` raises it for a model that declares a later one); with 3 the
    # rungs are 5, 15, 45, 135, ... epochs. The budget decides it: every model's
    # TikTok search in about 10 hours on 2 cores needs most points stopped at 5 epochs (their
    # s/epoch there, LightGCN 6 to MICRO 110, times 11 points x 5 + ~4 x 10 + ~2 x 30 epochs)
    min_epochs: int = 5
    reduction: int = 3
    metric: str = "recall@20"

    def describe(self) -> str:
        return f"sha(min={self.min_epochs},eta={self.reduction},{self.metric})"

    def for_model(self, model_min_epochs: int) -> Pruning:
        """The rule for one model's search: its first rung no earlier than the model's own
        ``min_epochs``, the epoch before which its early stopping may not stop it either (the
        model's statement that its validation curve means nothing earlier). MMIL (30) sits on a
        popularity plateau until about epoch 25: on MovieLens-100K, under a first rung at 5, ten
        of its twelve points were stopped at epoch 5, six of them on validation Recall@20
        .0975-.0986 against the first point's .0985 (the four at lr 1e-4: .054-.065), and the
        two that went on jumped to .156 by epoch 26. For every
        other model (``min_epochs`` 0) the rule, and so the search's name, is unchanged."""
        return replace(self, min_epochs=max(self.min_epochs, model_min_epochs))


@dataclass(frozen=True)
class Trial:
    """One grid point as the search saw it: the record of its run (the search's own, or a run of
    the same point made outside the search, whose first epochs are the same), whether the pruner
    stopped it, after how many epochs, and its best validation metric up to there."""

    point: Point
    record: Record
    pruned: bool
    epochs: int
    valid: float


@dataclass(frozen=True)
class SearchResult:
    name: str
    trials: list[Trial]
    best: Trial

    def summary(self) -> dict[str, Any]:
        """What `results/tuned.json` keeps of the search: every point, where it stopped, its key."""
        return {
            "search": self.name,
            "grid_points": len(self.trials),
            "pruned": sum(t.pruned for t in self.trials),
            "trials": [
                {"point": t.point, "key": t.record.key, "epochs": t.epochs, "pruned": t.pruned, "valid": t.valid}
                for t in self.trials
            ],
        }


def grid_points(grid: dict[str, list[Any]]) -> list[Point]:
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]


def search_name(grid: dict[str, list[Any]], pruning: Pruning) -> str:
    """The grid (its points in order) and the rule: both decide which runs are stopped where."""
    digest = hashlib.sha256(json.dumps(grid_points(grid), sort_keys=True, default=str).encode()).hexdigest()
    return f"{pruning.describe()}:{digest[:12]}"


def running_best(history: list[dict[str, float]], metric: str) -> list[tuple[int, float]]:
    """(epoch, best validation metric so far) after each validation: what the pruner sees (the
    best so far, so a noisy epoch does not stop a point that early stopping would keep)."""
    out, best = [], float("-inf")
    for row in history:
        v = row.get(f"valid_{metric}")
        if v is not None:
            best = max(best, v)
            out.append((int(row["epoch"]), best))
    return out


def _state(pruned: bool, epoch: int) -> str:
    return f"pruned at epoch {epoch}" if pruned else "finished"


def run_search(
    specs: list[RunSpec],
    points: list[Point],
    store: RunStore,
    pruning: Pruning,
    device: str | None = None,
    log: Callable[[str], None] | None = None,
    checkpoint_seconds: float = 300.0,
    progress: Callable[[str], None] | None = None,
    expected_seconds: list[float] | None = None,
) -> SearchResult:
    """Run (or replay from the store) each spec of one search in order under the pruner.
    ``log`` gets the runs' epoch lines, ``progress`` one line per point (default: ``log``), with
    the time left when ``expected_seconds`` (per point, `estimate.expected_search_seconds`)
    is given."""
    import optuna

    progress = progress or log
    started = time.monotonic()

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        pruner=optuna.pruners.SuccessiveHalvingPruner(
            min_resource=pruning.min_epochs, reduction_factor=pruning.reduction
        ),
    )
    trials: list[Trial] = []
    for n, (spec, point) in enumerate(zip(specs, points), start=1):
        trial = study.ask()
        reported: list[tuple[int, float]] = []  # (epoch, value) told to the pruner

        def stop(
            history: list[dict[str, float]], trial: optuna.Trial = trial, reported: list[tuple[int, float]] = reported
        ) -> bool:
            for epoch, value in running_best(history, pruning.metric):
                if reported and epoch <= reported[-1][0]:
                    continue
                trial.report(value, epoch)
                reported.append((epoch, value))
                if trial.should_prune():
                    return True
            return False

        # a run of this point outside the search (a default Table 2 run) trained the same epochs
        # the search would: replayed through the pruner, it is the point up to where it is stopped
        record = store.get(spec) or store.get(replace(spec, search=""))
        if record is None:
            record = run_one(spec, store, device, log, checkpoint_seconds, stop=stop)
            store.put(record)
            if record.pruned:  # a finished point keeps its final state until the choice is made
                store.checkpoint_path(spec).unlink(missing_ok=True)
            pruned = record.pruned
        else:
            # the pruner's state is rebuilt from the record: the same reports give the same decisions
            pruned = stop(record.history)
            if record.spec.search and (pruned != record.pruned or (pruned and reported[-1][0] != record.epochs_run)):
                raise RuntimeError(
                    f"{store.path(spec)}: recorded as {_state(record.pruned, record.epochs_run)}, but "
                    f"replayed through the search's pruner it is {_state(pruned, reported[-1][0] if reported else 0)}; "
                    "the records come from another search order or rule"
                )
        t = (
            Trial(point, record, True, *reported[-1])
            if pruned
            else Trial(point, record, False, record.epochs_run, record.valid[pruning.metric])
        )
        if t.pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, t.valid)
        trials.append(t)
        if progress:
            state = f"pruned at epoch {t.epochs}" if t.pruned else f"finished, {t.epochs} epochs"
            own = "" if record.spec.search else f", from run {record.key} made outside the search"
            left = f", about {sum(expected_seconds[n:]):.0f}s left" if expected_seconds else ""
            progress(
                f"search {n}/{len(specs)} {spec.label()}: {state}, best valid {pruning.metric} {t.valid:.4f}{own}"
                f" ({time.monotonic() - started:.0f}s elapsed{left})"
            )
    finished = [t for t in trials if not t.pruned]
    best = max(finished, key=lambda t: t.valid)
    _hand_over_best(trials, best, store)
    return SearchResult(specs[0].search, trials, best)


def _hand_over_best(trials: list[Trial], best: Trial, store: RunStore) -> None:
    """The chosen point's training, saved at its end, becomes the checkpoint of the same run
    outside the search (seed 0 of the tuned Table 2), which then only reads the test split: a
    second training would give the same weights to the last bit. The other points' final states
    are removed."""
    for t in trials:
        source = store.checkpoint_path(t.record.spec)
        if not t.record.spec.search or not source.is_file():
            continue
        target = replace(t.record.spec, search="")
        if t is best and store.get(target) is None and not store.checkpoint_path(target).exists():
            hand_over(source, store.checkpoint_path(target), t.record.key)
        else:
            source.unlink()
