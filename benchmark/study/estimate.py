"""How long a run not yet recorded will take, from the records already in run store.

Used by ``run_all.py --plan`` (time left) and by ``study.execute`` (longest runs first when
several processes share the work, so a long run started last does not set the finishing time).
A run is compared with recorded runs of the same dataset, model and kind of device (a GPU epoch
is a fraction of a CPU one), preferring those with the same configuration (a d=512 MMIL run costs several times a d=64 one): its typical time is
the epochs those trained (uncapped ones preferred) at their seconds per epoch, its worst that rate
times its epoch cap. The rate is the median over the records of the newest code among them: an
older record may predate a speed-up (TikTok HCGCN's of November: 203 s an epoch), and one run can
be slowed by what shared its machine (a TikTok MMGCN search run recorded 267 s an epoch against
15-19 s for its siblings).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .record import Record
from .spec import RunSpec


@dataclass(frozen=True)
class Estimate:
    typical_seconds: float
    worst_seconds: float


def _setting(spec: RunSpec) -> str:
    """A spec's model and training settings, without the seed."""
    return json.dumps(
        {
            "config": dict(spec.config),
            "train": dict(spec.train),
            "epochs": spec.epochs,
            "precision": spec.precision,
            "threads": spec.threads,
        },
        sort_keys=True,
        default=str,
    )


class History:
    """Recorded runs indexed by (dataset, model, device kind) and by setting."""

    def __init__(self, records: Iterable[Record]) -> None:
        self.by_model: dict[tuple[str, str, str], list[Record]] = {}
        for r in records:
            self.by_model.setdefault((r.spec.dataset, r.spec.model, r.spec.device), []).append(r)

    def estimate(self, spec: RunSpec) -> Estimate | None:
        """None when no run of the spec's dataset and model is recorded on its kind of device."""
        recs = self.by_model.get((spec.dataset, spec.model, spec.device))
        if not recs:
            return None
        setting = _setting(spec)
        recs = [r for r in recs if _setting(r.spec) == setting] or recs
        # a search point stopped by its pruner is as short as a capped run
        full = [r for r in recs if not (r.epochs_capped or r.pruned)] or recs
        rate = _per_epoch(recs)
        typical = rate * sum(r.epochs_run for r in full) / len(full)
        worst = rate * spec.resolved()[1].max_epochs
        # runs of other settings (an ablation's variants) can have run longer than this one's cap
        return Estimate(min(typical, worst), worst)

    def finish_and_rate(self, spec: RunSpec) -> tuple[float, float] | None:
        """The epochs a run of ``spec``'s dataset and model typically trains when nothing stops it
        early but its own early stopping (recorded runs neither pruned nor capped, any setting),
        and its seconds per epoch (same setting preferred); None without such a record."""
        recs = self.by_model.get((spec.dataset, spec.model, spec.device), [])
        full = [r for r in recs if not (r.epochs_capped or r.pruned)]
        if not full:
            return None
        setting = _setting(spec)
        return sum(r.epochs_run for r in full) / len(full), _per_epoch(
            [r for r in recs if _setting(r.spec) == setting] or recs
        )


def _per_epoch(records: list[Record]) -> float:
    """Median seconds per epoch (evaluations included) of the records made by the code version of
    the last one finished."""
    newest = max(records, key=lambda r: r.finished).code_version
    return float(np.median([r.total_seconds / max(r.epochs_run, 1) for r in records if r.code_version == newest]))


def sha_epochs(merits: Sequence[float], first_rung: int, reduction: int, finish: float) -> list[float]:
    """The epochs each point of a search trains under `search.Pruning`'s rule (Optuna's
    asynchronous successive halving), its points taken in order, if a point's validation metric
    at every rung were its ``merit`` and a point never stopped ran ``finish`` epochs. At rung k
    (``first_rung * reduction**k`` epochs) a point goes on only if its merit is among the best
    ``max(1, m // reduction)`` of the m points that have reached that rung, itself included."""
    reached: dict[int, list[float]] = {}
    out = []
    for merit in merits:
        epochs, k = finish, 0
        while first_rung * reduction**k < finish:
            rung = reached.setdefault(k, [])
            rung.append(merit)
            if merit < sorted(rung)[-max(1, len(rung) // reduction)]:
                epochs = first_rung * reduction**k
                break
            k += 1
        out.append(epochs)
    return out


def expected_sha_epochs(
    n_points: int, first_rung: int, reduction: int, finish: float, samples: int = 2000
) -> list[float]:
    """The mean of `sha_epochs` per position over random orders of merit (a fixed seed, so a plan
    prints the same figure twice): what a search is expected to train when nothing of it is known.
    A grid is not in random order (a weak learning rate stays weak), so it is a rough guide: with
    ``finish`` from `History.finish_and_rate`, the 25 searches committed by December 2026 trained
    0.60-2.35 times it (median 1.21), the most where many points were near-equal (BPR, LightGCN),
    the least where a few clearly led (MICRO, MMGCL)."""
    rng = np.random.default_rng(0)
    total = np.zeros(n_points)
    for _ in range(samples):
        total += sha_epochs(rng.permutation(n_points).tolist(), first_rung, reduction, finish)
    return (total / samples).tolist()


def expected_search_seconds(
    specs: list[RunSpec], todo: list[bool], first_rung: int, reduction: int, history: History
) -> list[float] | None:
    """Per grid point of one search (in order), the seconds it is expected to train: 0 where
    ``todo`` is False (recorded, replayed in no time), else its expected epochs at its position
    (`expected_sha_epochs`) times the model's recorded seconds per epoch; None when no recorded
    run of the dataset and model ran to its own end."""
    known = [history.finish_and_rate(s) for s in specs]
    if not specs or any(k is None for k in known):
        return None
    epochs = expected_sha_epochs(len(specs), first_rung, reduction, known[0][0] if known[0] else 0.0)
    return [e * k[1] if t and k else 0.0 for e, k, t in zip(epochs, known, todo)]


# A fresh clone has no records to go by, so runs of models without one are ordered by this prior:
# each model's seconds in the main job (three synthetic presets, one thread, summed), measured
# quiet on the 2-core CPU in session 6. Only the order depends on it, never a number.
COST_PRIOR: dict[str, float] = {
    "hcgcn": 347, "mmgcn": 309, "mmil": 287, "grcn": 237, "micro": 237, "huign": 192,
    "lattice": 108, "mmgcl": 90, "slmrec": 80, "vbpr": 26, "bpr": 13, "lightgcn": 6,
}  # fmt: skip


def longest_first(specs: list[RunSpec], history: History) -> list[RunSpec]:
    """``specs`` by decreasing typical time; those with nothing to go by first, since they may be
    long (among them by `COST_PRIOR`, a model it does not know first), and ties in their given
    order."""

    def cost(s: RunSpec) -> tuple[int, float]:
        e = history.estimate(s)
        return (1, COST_PRIOR.get(s.model, float("inf"))) if e is None else (0, e.typical_seconds)

    return sorted(specs, key=cost, reverse=True)


def time_left(elapsed: float, done: list[float | None], left: list[float | None]) -> float:
    """Seconds left after ``elapsed`` seconds ran the runs estimated at ``done``: scaled by the
    estimates of the runs ``left`` when every one is known (longest-first ordering puts the long
    runs early, so a mean per run would overstate the rest), else by the mean per finished run."""
    done_known = [x for x in done if x is not None]
    left_known = [x for x in left if x is not None]
    if done and len(done_known) == len(done) and len(left_known) == len(left) and sum(done_known) > 0:
        return elapsed * sum(left_known) / sum(done_known)
    return elapsed / max(len(done), 1) * len(left)
