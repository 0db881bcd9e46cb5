#!/usr/bin/env python
"""The suite's one command line: build the run list of an artefact, run what is missing, render.

    python run_all.py --table 2                  # Table 2 on the embedded synthetic presets
    python run_all.py --ablation                 # Table 3: MMIL and its four ablation variants
    python run_all.py --figure 2                 # Figure 2 (also 3, 4; --sensitivity for all three)
    python run_all.py --all                      # everything above, then results/REPORT.md
    python run_all.py --report                   # re-render from the records (--table 2 etc.: only those)
    python run_all.py --report --check           # re-render every committed artefact in a scratch folder, compare
    python run_all.py --verify 3                 # retrain 3 committed runs, check they reproduce exactly
    python run_all.py --all --plan               # runs needed, recorded, to run; time left; trains nothing
    python run_all.py --tune lightgcn vbpr --datasets synthetic-baby   # grid searches on validation
    python run_all.py --table 1 --data-root ../shared/data --datasets amazon-baby tiktok

Records go to results/runs/ (committed; a recorded run is skipped, a killed one resumes).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmark.config import ConfigError
from benchmark.data import DataError
from benchmark.paths import default_data_root
from benchmark.registry import UnknownModel
from benchmark.study.driver import Options, check, produce, verify

ACTIONS = ("table", "ablation", "figure", "sensitivity", "all", "report", "tune", "list", "verify")


def parse(argv: list[str] | None) -> Options:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument_group("what to produce").add_argument
    a("--table", type=int, choices=[1, 2], help="Table 1 (dataset statistics) or 2 (comparison)")
    a("--ablation", action="store_true", help="Table 3 (MMIL's ablation variants)")
    a("--figure", type=int, choices=[2, 3, 4], action="append", help="a sensitivity figure")
    a("--sensitivity", action="store_true", help="Figures 2, 3 and 4")
    a("--all", action="store_true", help="Tables 2 and 3, Figures 2-4 and results/REPORT.md")
    a("--report", action="store_true", help="render from existing records only; fails if any is missing")
    a("--check", action="store_true", help="with --report: re-render every committed artefact and compare")
    a("--verify", type=int, metavar="K", help="retrain K committed runs and compare with their records")
    a("--verify-budget", type=float, metavar="MIN", help="with --verify: the cheapest runs within MIN minutes")
    a("--tune", nargs="+", metavar="MODEL", help="grid-search each MODEL (all: every one) on validation")
    a("--grid", nargs="+", metavar="KEY=V1,V2", help="with --tune: this grid instead of the model's")
    a("--list", action="store_true", help="list known datasets and models, then exit")
    a("--plan", action="store_true", help="count an artefact's runs, recorded and to run, estimate the time left")
    h = p.add_argument_group("how").add_argument
    h("--datasets", nargs="+", help="dataset names (default: the folders of --data-root, else the presets)")
    h("--models", nargs="+", help="Table 2 models (default: every one of the paper's)")
    h("--seeds", nargs="+", type=int, help="seeds (default 0; 0 1 2 for Table 3, as mmil.md 6b asks)")
    h("--epochs", type=int, help="cap the training epochs (recorded as capped)")
    h("--precision", choices=["fp32", "bf16"], default="fp32", help="bf16: autocast training steps (default fp32)")
    h("--threads", type=int, default=1, help="torch CPU threads of each run (recorded; numbers depend on it)")
    h("--untuned", action="store_true", help="every model at its defaults, ignoring results/tuned.json")
    h("--device", default="auto", help="auto, cpu, cuda, cuda:1 ... (default auto)")
    h("--data-root", type=Path, default=default_data_root(), help="folder of real datasets, one folder each")
    h("--jobs", type=int, default=0, help="runs in parallel (default: cpu count / --threads)")
    h("--backend", choices=["loky", "dask"], default="loky", help="where parallel runs go")
    h("--scheduler", help="with --backend dask: the address of an existing Dask scheduler")
    h("--force", action="store_true", help="rerun runs that already have a record")
    h("--checkpoint-minutes", type=float, default=5.0, help="save a run's full state this often (0: every epoch)")
    h("--mask-valid-at-test", action="store_true", help="mask valid items at test time too")
    h("--quiet", action="store_true", help="no per-epoch lines, only run progress")
    h("--debug", action="store_true", help="show the Python traceback of an error")
    h("--tag", default="", help="write table2-TAG.md, figure2-TAG.png, REPORT-TAG.md ... (other data or protocols)")
    args = p.parse_args(argv)
    if args.tag and not args.tag.replace("-", "").replace("_", "").isalnum():
        p.error(f"--tag {args.tag!r}: letters, digits, '-' and '_' only")
    if args.plan and args.report:
        p.error("--plan goes with the flags that train (--table 2, --ablation, --figure N, --all), not --report")
    if args.check and not args.report:
        p.error("--check goes with --report")
    if not any(getattr(args, k) for k in ACTIONS):
        p.error("nothing to do: give --table N, --ablation, --figure N, --all, --report, --tune, --verify or --list")
    if args.scheduler and args.backend != "dask":
        p.error("--scheduler goes with --backend dask")
    return Options(**vars(args))


def main(argv: list[str] | None = None) -> int:
    opts = parse(argv)
    return check(opts) if opts.check else verify(opts) if opts.verify else produce(opts)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (DataError, ConfigError, UnknownModel, ValueError, FileNotFoundError) as e:
        if "--debug" in sys.argv:
            raise
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume (records and checkpoints are kept)", file=sys.stderr)
        sys.exit(130)
