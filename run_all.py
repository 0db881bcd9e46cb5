#!/usr/bin/env python
"""The suite's one command line: build the run list of an artefact, run what is missing, render.

    python run_all.py --table 2                       # Table 2 on the embedded synthetic presets
    python run_all.py --table 2 --data-root ../shared/data --datasets amazon-baby tiktok
    python run_all.py --list                          # datasets and models known

Records go to results/runs/ (one JSON per run, skipped when present); tables to results/.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from benchmark import experiments, report
from benchmark.config import ConfigError
from benchmark.data import DataError, available, real_datasets
from benchmark.data.synthetic import PRESETS
from benchmark.paths import default_data_root, results_dir
from benchmark.registry import UnknownModel, model_names
from benchmark.runs import execute

SYNTHETIC_DEFAULT = ["synthetic-clothing", "synthetic-sports", "synthetic-baby"]


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--table", type=int, choices=[2], help="render Table 2 (model comparison)")
    p.add_argument("--ablation", action="store_true", help="render Table 3 (MMIL's ablation variants)")
    p.add_argument("--list", action="store_true", help="list known datasets and models, then exit")
    p.add_argument("--datasets", nargs="+", help="dataset names (default: the folders under --data-root "
                   "if any, else the synthetic presets)")
    p.add_argument("--models", nargs="+", help="model names (default: every registered Table 2 model)")
    p.add_argument("--seeds", nargs="+", type=int,
                   help="seeds (default: 0 for Table 2; 0 1 2 for Table 3, as mmil.md 6b asks)")
    p.add_argument("--epochs", type=int, help="cap the training epochs (recorded as capped)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ... (default auto)")
    p.add_argument("--data-root", type=Path, default=default_data_root(),
                   help="folder holding real datasets, one folder each (default: data/ in the repo)")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel (joblib processes)")
    p.add_argument("--force", action="store_true", help="rerun runs that already have a record")
    p.add_argument("--mask-valid-at-test", action="store_true", help="mask valid items at test time too")
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines, only run progress")
    p.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    args = p.parse_args(argv)
    if not (args.table or args.ablation or args.list):
        p.error("nothing to do: give --table 2, --ablation or --list")
    return args


def default_datasets(root: Path) -> list[str]:
    return real_datasets(root) or SYNTHETIC_DEFAULT


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.list:
        print("datasets:", " ".join(available(args.data_root)))
        print("models:  ", " ".join(model_names()))
        return 0
    datasets = args.datasets or default_datasets(args.data_root)
    known = set(model_names())
    models = args.models or [m for m in experiments.TABLE2_MODELS if m in known]
    for m in models:
        if m not in known:
            raise UnknownModel(f"unknown model {m!r}; known: {sorted(known)}")
    t0 = time.perf_counter()
    if args.table == 2:
        seeds = args.seeds or [0]
        specs = experiments.table2_specs(datasets, models, seeds, args.epochs, args.mask_valid_at_test)
        print(f"Table 2: {len(specs)} runs ({len(datasets)} datasets x {len(models)} models x "
              f"{len(seeds)} seeds)", file=sys.stderr)
        records = execute(specs, args.data_root, args.device, args.jobs, args.force, verbose=not args.quiet)
        df = experiments.table2_frame(records)
        md = report.markdown_table(df, "model", experiments.TABLE2_METRICS,
                                   "Table 2: Recall / Precision / NDCG @20 (test split, full ranking)")
        emit(df, md, "table2")
    if args.ablation:
        from mmil import VARIANTS
        seeds = args.seeds or [0, 1, 2]
        specs = experiments.ablation_specs(datasets, VARIANTS, seeds, args.epochs, args.mask_valid_at_test)
        print(f"Table 3: {len(specs)} runs ({len(datasets)} datasets x {len(VARIANTS)} variants x "
              f"{len(seeds)} seeds)", file=sys.stderr)
        records = execute(specs, args.data_root, args.device, args.jobs, args.force, verbose=not args.quiet)
        df = experiments.table3_frame(records)
        md = report.markdown_table(df, "variant", experiments.ABLATION_METRICS,
                                   "Table 3: MMIL ablation, Recall / NDCG @20 (test split)")
        emit(df, md, "table3")
    print(f"total {time.perf_counter() - t0:.0f}s", file=sys.stderr)
    return 0


def emit(df, md: str, stem: str) -> None:  # type: ignore[no-untyped-def]
    for path in report.write_table(df, md, results_dir() / stem):
        print(f"wrote {path}", file=sys.stderr)
    print(md)


if __name__ == "__main__":
    debug = "--debug" in sys.argv
    try:
        sys.exit(main())
    except (DataError, ConfigError, UnknownModel, ValueError, FileNotFoundError) as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: finished runs are recorded; rerun the same command to resume", file=sys.stderr)
        sys.exit(130)
