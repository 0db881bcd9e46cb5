"""Replay the recorded durations of an artefact's runs through N greedy workers: the finishing
time in spec order against longest first (``study.execute``'s order under ``--jobs N``), by the
records and, as on a fresh clone with none, by the models' cost prior alone.

    python -m benchmark.schedule_replay [--workers 2 4]

A simulation from the run store (each run's ``total_seconds`` as recorded, one thread),
not a timing: it shows what the ordering alone changes. Runs without a record are left out.
"""

from __future__ import annotations

import argparse
import heapq

from ..paths import runs_dir
from .artefacts import Options, build
from .definition import SYNTHETIC_DEFAULT, TABLE2_MODELS
from .estimate import History, longest_first
from .execute import unique
from .store import RunStore


def finishing_time(durations: list[float], workers: int) -> float:
    """Each run goes to the worker that frees up first, in the given order."""
    free = [0.0] * workers
    for d in durations:
        heapq.heappush(free, heapq.heappop(free) + d)
    return max(free)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--workers", nargs="+", type=int, default=[2, 4])
    args = p.parse_args(argv)
    store = RunStore(runs_dir(), None)
    arts = build(Options(all=True), list(SYNTHETIC_DEFAULT), list(TABLE2_MODELS))
    specs = list({store.key(s): s for s in unique(s for a in arts for s in a.specs)}.values())
    seconds = {store.key(s): r.total_seconds for s in specs if (r := store.get(s)) is not None}
    have = [s for s in specs if store.key(s) in seconds]
    ordered = longest_first(have, History(store.all()))
    by_prior = longest_first(have, History([]))
    total = sum(seconds.values())
    print(f"run_all.py --all: {len(specs)} runs, {len(have)} recorded, {total / 3600:.2f} h in one process")
    for n in args.workers:
        spec_order = finishing_time([seconds[store.key(s)] for s in have], n)
        longest = finishing_time([seconds[store.key(s)] for s in ordered], n)
        prior = finishing_time([seconds[store.key(s)] for s in by_prior], n)
        bound = max(total / n, max(seconds.values()))
        print(
            f"{n} workers: spec order {spec_order / 60:.1f} min, longest first {longest / 60:.1f} min "
            f"(by the prior alone {prior / 60:.1f} min), "
            f"lower bound {bound / 60:.1f} min"
        )


if __name__ == "__main__":
    main()
