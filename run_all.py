#!/usr/bin/env python
"""The suite's one command line: build the run list of an artefact, run what is missing, render.

    python run_all.py --table 2                  # Table 2 on the embedded synthetic presets
    python run_all.py --ablation                 # Table 3: MMIL and its four ablation variants
    python run_all.py --figure 2                 # Figure 2 (also 3, 4; --sensitivity for all three)
    python run_all.py --all                      # everything above, then results/REPORT.md
    python run_all.py --report                   # re-render every artefact from existing records
    python run_all.py --report --table 2         # ... only Table 2 (and its REPORT.md)
    python run_all.py --all --plan               # runs needed, recorded, to run; time left; trains nothing
    python run_all.py --tune lightgcn --datasets synthetic-baby   # grid search on validation
    python run_all.py --table 1 --data-root ../shared/data --datasets amazon-baby tiktok
    python run_all.py --list                     # datasets and models known

Records go to results/runs/ (one JSON per run; a run with a record is skipped, so a killed
command resumes when started again); tables to results/, figures to figures/.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from benchmark import experiments, report, tuning
from benchmark.config import ConfigError
from benchmark.data import DataError, available, real_datasets
from benchmark.estimate import History
from benchmark.paths import default_data_root, figures_dir, results_dir, tagged
from benchmark.registry import UnknownModel, model_names
from benchmark.runs import RunSpec, execute, existing, record_path

SYNTHETIC_DEFAULT = ["synthetic-clothing", "synthetic-sports", "synthetic-baby"]


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = p.add_argument_group("what to produce")
    what.add_argument("--table", type=int, choices=[1, 2], help="Table 1 (dataset statistics) or 2 (comparison)")
    what.add_argument("--ablation", action="store_true", help="Table 3 (MMIL's ablation variants)")
    what.add_argument("--figure", type=int, choices=[2, 3, 4], action="append", help="a sensitivity figure")
    what.add_argument("--sensitivity", action="store_true", help="Figures 2, 3 and 4")
    what.add_argument("--all", action="store_true", help="Tables 2 and 3, Figures 2-4 and results/REPORT.md")
    what.add_argument("--report", action="store_true",
                      help="re-render every artefact (only those named, with --table 2/--ablation/--figure N) "
                      "and REPORT.md from existing records; trains nothing")
    what.add_argument("--tune", metavar="MODEL", help="grid-search MODEL on validation, store the choice")
    what.add_argument("--grid", nargs="+", metavar="KEY=V1,V2", help="with --tune: this grid instead of the model's")
    what.add_argument("--list", action="store_true", help="list known datasets and models, then exit")
    what.add_argument("--plan", action="store_true",
                      help="with an artefact flag: count its runs, recorded and to run, estimate the time left; trains nothing")
    how = p.add_argument_group("how")
    how.add_argument("--datasets", nargs="+", help="dataset names (default: the folders under --data-root "
                     "if any, else the synthetic presets)")
    how.add_argument("--models", nargs="+", help="Table 2 models (default: every registered one)")
    how.add_argument("--seeds", nargs="+", type=int,
                     help="seeds (default: 0 for Table 2, figures and tuning; 0 1 2 for Table 3, as mmil.md 6b asks)")
    how.add_argument("--epochs", type=int, help="cap the training epochs (recorded as capped)")
    how.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ... (default auto)")
    how.add_argument("--data-root", type=Path, default=default_data_root(),
                     help="folder holding real datasets, one folder each (default: data/ in the repo)")
    how.add_argument("--jobs", type=int, default=1, help="runs in parallel (joblib processes; torch threads divided)")
    how.add_argument("--backend", choices=["loky", "dask"], default="loky", help="where parallel runs go")
    how.add_argument("--scheduler", help="with --backend dask: the address of an existing Dask scheduler")
    how.add_argument("--force", action="store_true", help="rerun runs that already have a record")
    how.add_argument("--mask-valid-at-test", action="store_true", help="mask valid items at test time too")
    how.add_argument("--quiet", action="store_true", help="no per-epoch lines, only run progress")
    how.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    how.add_argument("--tag", default="", help="write results/table2-TAG.md, figures/figure2-TAG.png, "
                     "REPORT-TAG.md ... instead of the default artefacts (for other data or protocols)")
    args = p.parse_args(argv)
    if args.tag and not args.tag.replace("-", "").replace("_", "").isalnum():
        p.error(f"--tag {args.tag!r}: letters, digits, '-' and '_' only")
    if args.plan and args.report:
        p.error("--plan goes with the flags that train (--table 2, --ablation, --figure N, --all), not --report")
    if not (args.table or args.ablation or args.figure or args.sensitivity or args.all or args.report
            or args.tune or args.list):
        p.error("nothing to do: give --table 2, --ablation, --figure N, --all, --report, --tune MODEL or --list")
    if args.scheduler and args.backend != "dask":
        p.error("--scheduler goes with --backend dask")
    return args


@dataclass
class Artefact:
    name: str
    flag: str
    specs: list[RunSpec]
    render: Callable[[list[dict[str, Any]], str], None]   # (records, tag)
    models: tuple[str, ...] = ()   # the full model list of an artefact that takes --models

    def command(self, records: list[dict[str, Any]], data_root: Path, tag: str) -> str:
        """The driver command that reproduces this artefact from scratch, read off its records."""
        datasets = list(dict.fromkeys(r["spec"]["dataset"] for r in records))
        seeds = sorted({r["spec"]["seed"] for r in records})
        caps = sorted({r["spec"]["epochs"] for r in records if r["spec"]["epochs"] is not None})
        real = [d for d in datasets if not any(r["dataset"]["synthetic"] for r in records if r["spec"]["dataset"] == d)]
        models = list(dict.fromkeys(r["spec"]["model"] for r in records))
        subset = bool(self.models) and set(models) != set(self.models)
        return " ".join(["python run_all.py", self.flag, "--datasets", *datasets]
                        + (["--models", *models] if subset else []) + ["--seeds", *map(str, seeds)]
                        + (["--epochs", str(caps[0])] if len(caps) == 1 else [])
                        + (["--data-root", str(data_root)] if real else []) + (["--tag", tag] if tag else []))


def emit(df, md: str, stem: str, tex: str | None = None) -> None:  # type: ignore[no-untyped-def]
    for path in report.write_table(df, md, results_dir() / stem, tex):
        print(f"wrote {path}", file=sys.stderr)
    print(md)


def render_table2(records: list[dict[str, Any]], tag: str) -> None:
    df = experiments.table2_frame(records)
    pv = experiments.pvalues_vs_best(records, df, "model", "mmil", experiments.TABLE2_METRICS) \
        if df["n_seeds"].max() > 1 else None
    title = "Table 2: Recall / Precision / NDCG @20 (test split, full ranking)"
    emit(df, report.markdown_table(df, "model", experiments.TABLE2_METRICS, title, "mmil", pv), tagged("table2", tag),
         report.latex_table(df, "model", experiments.TABLE2_METRICS, title, "mmil", pv))


def render_table3(records: list[dict[str, Any]], tag: str) -> None:
    row_of = lambda r: r["model"]["variant"]  # noqa: E731
    df = experiments.table3_frame(records)
    pv = experiments.pvalues_vs_best(records, df, "variant", "mmil", experiments.ABLATION_METRICS, row_of) \
        if df["n_seeds"].max() > 1 else None
    title = "Table 3: MMIL ablation, Recall / NDCG @20 (test split)"
    emit(df, report.markdown_table(df, "variant", experiments.ABLATION_METRICS, title, "mmil", pv), tagged("table3", tag),
         report.latex_table(df, "variant", experiments.ABLATION_METRICS, title, "mmil", pv))


def render_figure(figure: int) -> Callable[[list[dict[str, Any]], str], None]:
    def render(records: list[dict[str, Any]], tag: str) -> None:
        from benchmark.figures import draw
        frame = experiments.sensitivity_frame(figure, records)
        report.write_table(frame, None, results_dir() / tagged(f"figure{figure}", tag))
        syn = any(r["dataset"]["synthetic"] for r in records)
        for p in draw(figure, frame, figures_dir(), "synthetic data" if syn else "", tag):
            print(f"wrote {p}", file=sys.stderr)
    return render


def artefacts(args: argparse.Namespace, datasets: list[str], models: list[str]) -> list[Artefact]:
    named = args.table == 2 or args.ablation or args.figure or args.sensitivity
    every = args.all or (args.report and not named)
    tuned = tuning.load_choices()
    out = []
    if args.table == 2 or every:
        out.append(Artefact("Table 2", "--table 2", experiments.table2_specs(
            datasets, models, args.seeds or [0], args.epochs, args.mask_valid_at_test, tuned), render_table2,
            experiments.TABLE2_MODELS))
    if args.ablation or every:
        from mmil import VARIANTS
        out.append(Artefact("Table 3", "--ablation", experiments.ablation_specs(
            datasets, VARIANTS, args.seeds or [0, 1, 2], args.epochs, args.mask_valid_at_test), render_table3))
    figures = sorted(set(args.figure or []) | ({2, 3, 4} if args.sensitivity or every else set()))
    for fig in figures:
        out.append(Artefact(f"Figure {fig}", f"--figure {fig}", experiments.sensitivity_specs(fig, datasets, args.seeds or [0], args.epochs),
                            render_figure(fig)))
    return out


def plan(arts: list[Artefact], data_root: Path) -> list[str]:
    """Per artefact and dataset: runs needed, recorded, to run; and the one-process time of those
    to run, estimated from the recorded runs (``benchmark.estimate``)."""
    history = History.load()
    lines, typical, worst, unknown, seen = [], 0.0, 0.0, 0, set()
    for a in arts:
        for d in dict.fromkeys(s.dataset for s in a.specs):
            specs = [s for s in a.specs if s.dataset == d]
            paths = [record_path(s, data_root) for s in specs]
            todo = [s for s, p in zip(specs, paths) if p not in seen and not p.is_file()]
            seen.update(paths)
            for s in todo:
                e = history.estimate(s)
                if e is None:
                    unknown += 1
                    continue
                typical += e.typical_seconds
                worst += e.worst_seconds
            lines.append(f"{a.name} / {d}: {len(specs)} runs, {len(specs) - len(todo)} recorded or shared, "
                         f"{len(todo)} to run")
    lines.append(f"to run: about {typical / 3600:.1f} h in one process if runs stop where recorded ones did, "
                 f"at most {worst / 3600:.1f} h" + (f"; {unknown} run(s) of a dataset and model with no record "
                                                     "to estimate from" if unknown else ""))
    return lines


def run_tune(args: argparse.Namespace, datasets: list[str]) -> None:
    grid = tuning.parse_grid(args.grid) if args.grid else None
    specs = tuning.tune_specs(args.tune, datasets, args.seeds or [0], args.epochs, grid)
    print(f"tuning {args.tune}: {len(specs)} runs", file=sys.stderr)
    records = execute(specs, args.data_root, args.device, args.jobs, args.force, verbose=not args.quiet,
                      backend=args.backend, scheduler=args.scheduler)
    n_points = len(specs) // max(len(datasets), 1) // len(args.seeds or [0])
    for d in datasets:
        config, valid = tuning.select([r for r in records if r["spec"]["dataset"] == d])
        tuning.save_choice(d, args.tune, config, valid, n_points)
        print(f"{d} / {args.tune}: chose {config} (valid recall@20 {valid:.4f}) -> {tuning.tuned_path()}")
        for r in sorted((r for r in records if r["spec"]["dataset"] == d), key=lambda r: -r["valid"]["recall@20"]):
            print(f"    valid recall@20 {r['valid']['recall@20']:.4f}  best epoch {r['best_epoch']:3d}  "
                  f"{ {**r['spec']['config'], **r['spec']['train']} }")


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    t0 = time.perf_counter()
    if args.list:
        print("datasets:", " ".join(available(args.data_root)))
        print("models:  ", " ".join(model_names()))
        return 0
    datasets = args.datasets or real_datasets(args.data_root) or SYNTHETIC_DEFAULT
    if args.table == 1:
        from benchmark.data.stats import format_table1, table1
        print(format_table1(table1(datasets, args.data_root)))
    known = set(model_names())
    models = args.models or [m for m in experiments.TABLE2_MODELS if m in known]
    for m in models + ([args.tune] if args.tune else []):
        if m not in known:
            raise UnknownModel(f"unknown model {m!r}; known: {sorted(known)}")
    if args.tune:
        run_tune(args, datasets)
    arts = artefacts(args, datasets, models)
    if not arts:
        return 0
    if args.plan:
        print("\n".join(plan(arts, args.data_root)))
        return 0
    if not args.report:
        union = [s for a in arts for s in a.specs]
        print(" + ".join(f"{a.name}: {len(a.specs)} runs" for a in arts), file=sys.stderr)
        execute(union, args.data_root, args.device, args.jobs, args.force, verbose=not args.quiet,
                backend=args.backend, scheduler=args.scheduler)
    all_records, commands, rendered = [], [], []
    for a in arts:
        records = existing(a.specs, args.data_root)
        if len(records) < len(a.specs):
            # a dataset enters an artefact only when all its runs are recorded: a Table 3 with only
            # the row it shares with Table 2 would read as a finished ablation
            needed = {d: sum(s.dataset == d for s in a.specs) for d in dict.fromkeys(s.dataset for s in a.specs)}
            have = {d: sum(r["spec"]["dataset"] == d for r in records) for d in needed}
            complete = [d for d in needed if have[d] >= needed[d]]
            print(f"{a.name}: {len(a.specs) - len(records)} of {len(a.specs)} runs have no record yet; "
                  f"rendering the complete datasets: {complete or 'none'}", file=sys.stderr)
            records = [r for r in records if r["spec"]["dataset"] in complete]
        if records:
            a.render(records, args.tag)
            commands.append(a.command(records, args.data_root, args.tag))
            rendered.append(a.name)
        all_records += records
    if args.all or args.report:
        from benchmark.report_page import write_report
        unique = list({r["key"]: r for r in all_records}.values())
        path = write_report(unique, commands, rendered, time.perf_counter() - t0 if not args.report else 0.0,
                            args.tag)
        print(f"wrote {path}", file=sys.stderr)
    print(f"total {time.perf_counter() - t0:.0f}s", file=sys.stderr)
    return 0


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
