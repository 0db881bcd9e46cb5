"""How long a run not yet recorded will take, from the records already in run store.

Used by ``run_all.py --plan`` (time left) and by ``study.execute`` (longest runs first when
several processes share the work, so a long run started last does not set the finishing time).
A run is compared with recorded runs of the same dataset, model and kind of device (a GPU epoch
is a fraction of a CPU one), preferring those with the same configuration (a d=512 MMIL run costs several times a d=64 one): its typical time is as long
as those took (uncapped ones preferred), its worst their seconds per epoch times its epoch cap.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

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
        full = [r for r in recs if not r.epochs_capped] or recs
        typical = sum(r.total_seconds for r in full) / len(full)
        per_epoch = sum(r.total_seconds / max(r.epochs_run, 1) for r in recs) / len(recs)
        return Estimate(typical, per_epoch * spec.resolved()[1].max_epochs)


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
