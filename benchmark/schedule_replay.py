"""Replay the recorded durations of an artefact's runs through N greedy workers: the finishing
time in spec order against longest first (``runs.execute``'s order under ``--jobs N``).

    python -m benchmark.schedule_replay [--workers 2 4]

A simulation from ``results/runs/`` (each run's ``total_seconds`` as recorded, one thread),
not a timing: it shows what the ordering alone changes. Runs without a record are left out.
"""
from __future__ import annotations

import argparse
import heapq

from .estimate import History, longest_first
from .runs import RunSpec, load_record


def finishing_time(durations: list[float], workers: int) -> float:
    """Each run goes to the worker that frees up first, in the given order."""
    free = [0.0] * workers
    for d in durations:
        heapq.heappush(free, heapq.heappop(free) + d)
    return max(free)


def main(argv: list[str] | None = None) -> None:
    import run_all
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--workers", nargs="+", type=int, default=[2, 4])
    args = p.parse_args(argv)
    arts = run_all.artefacts(run_all.parse(["--all"]), run_all.SYNTHETIC_DEFAULT,
                             list(run_all.experiments.TABLE2_MODELS))
    specs: list[RunSpec] = list({s.key(None): s for a in arts for s in a.specs}.values())
    seconds = {s.key(None): r["total_seconds"] for s in specs if (r := load_record(s, None)) is not None}
    have = [s for s in specs if s.key(None) in seconds]
    ordered = longest_first(have, History.load())
    total = sum(seconds.values())
    print(f"run_all.py --all: {len(specs)} runs, {len(have)} recorded, {total / 3600:.2f} h in one process")
    for n in args.workers:
        spec_order = finishing_time([seconds[s.key(None)] for s in have], n)
        longest = finishing_time([seconds[s.key(None)] for s in ordered], n)
        bound = max(total / n, max(seconds.values()))
        print(f"{n} workers: spec order {spec_order / 3600:.2f} h, longest first {longest / 3600:.2f} h, "
              f"lower bound {bound / 3600:.2f} h")


if __name__ == "__main__":
    main()
