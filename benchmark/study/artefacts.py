"""The paper's artefacts (Tables 2 and 3, Figures 2-4): the runs each needs and how its records
become files under ``results/`` and ``figures/``."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..paths import ROOT, figures_dir, results_dir, tagged
from ..trainer import device_kind
from . import experiments, tables, tuning
from .definition import ABLATION_METRICS, ABLATION_SEEDS, FOCUS, TABLE2_METRICS, TABLE2_MODELS, VARIANTS
from .record import Record
from .spec import RunSpec


@dataclass
class Options:
    """What the command line asked for (see run_all.py for each flag)."""

    table: int | None = None
    ablation: bool = False
    figure: list[int] | None = None
    sensitivity: bool = False
    all: bool = False
    report: bool = False
    check: bool = False
    tune: list[str] | None = None
    grid: list[str] | None = None
    list: bool = False
    plan: bool = False
    verify: int | None = None
    verify_budget: float | None = None
    datasets: list[str] | None = None
    models: list[str] | None = None
    seeds: list[int] | None = None
    epochs: int | None = None
    device: str = "auto"
    data_root: Path = ROOT / "data"
    jobs: int = 0  # 0: as many as the cores hold at `threads` each
    backend: str = "loky"
    scheduler: str | None = None
    force: bool = False
    mask_valid_at_test: bool = False
    precision: str = "fp32"
    threads: int = 1
    untuned: bool = False  # every model at its defaults, whatever results/tuned.json holds
    quiet: bool = False
    debug: bool = False
    tag: str = ""
    checkpoint_minutes: float = 5.0


Renderer = Callable[[list[Record], str], list[Path]]


@dataclass
class Artefact:
    name: str
    flag: list[str]
    specs: list[RunSpec]
    render: Renderer  # (records, tag) -> files written
    models: tuple[str, ...] = ()  # the full model list of an artefact that takes --models
    files: list[Path] = field(default_factory=list)

    def command(self, records: list[Record], data_root: Path, tag: str, untuned: bool = False) -> list[str]:
        """The driver arguments that reproduce this artefact from scratch, read off its records."""
        datasets = list(dict.fromkeys(r.spec.dataset for r in records))
        seeds = sorted({r.spec.seed for r in records})
        caps = sorted({r.spec.epochs for r in records if r.spec.epochs is not None})
        precisions = sorted({r.spec.precision for r in records})
        threads = sorted({r.spec.threads for r in records})
        devices = sorted({r.spec.device for r in records})
        real = any(not r.dataset.synthetic for r in records)
        models = list(dict.fromkeys(r.spec.model for r in records))
        subset = bool(self.models) and set(models) != set(self.models)
        return (
            self.flag
            + ["--datasets", *datasets]
            + (["--models", *models] if subset else [])
            + ["--seeds", *map(str, seeds)]
            + (["--epochs", str(caps[0])] if len(caps) == 1 else [])
            + (["--precision", precisions[0]] if precisions != ["fp32"] else [])
            + (["--threads", str(threads[0])] if threads != [1] else [])
            + (["--device", devices[0]] if devices != ["cpu"] else [])
            + (["--untuned"] if untuned else [])
            + (["--mask-valid-at-test"] if any(r.spec.mask_valid_at_test for r in records) else [])
            + (["--data-root", display_path(data_root)] if real else [])
            + (["--tag", tag] if tag else [])
        )


def display_path(p: Path) -> str:
    """A data root as the reports print it: relative to the repository when it can be, so a
    command works from any clone with ``shared/`` beside it."""
    try:
        return str(Path(p).resolve().relative_to(ROOT.resolve()))
    except ValueError:
        return os.path.relpath(Path(p).resolve(), ROOT.resolve())


def _emit(df, md: str, stem: str, tex: str) -> list[Path]:  # type: ignore[no-untyped-def]
    print(md)
    return tables.write_table(df, md, results_dir() / stem, tex)


def render_table2(records: list[Record], tag: str) -> list[Path]:
    df = experiments.table2_frame(records)
    pv = experiments.pvalues_vs_best(records, df, "model", FOCUS, TABLE2_METRICS) if df["n_seeds"].max() > 1 else None
    title = "Table 2: Recall / Precision / NDCG @20 (test split, full ranking)"
    return _emit(
        df,
        tables.markdown_table(df, "model", TABLE2_METRICS, title, FOCUS, pv),
        tagged("table2", tag),
        tables.latex_side_by_side(df, "model", TABLE2_METRICS, title, FOCUS, pv),
    )


def render_table3(records: list[Record], tag: str) -> list[Path]:
    df = experiments.table3_frame(records)
    pv = (
        experiments.pvalues_vs_best(records, df, "variant", FOCUS, ABLATION_METRICS, lambda r: r.variant)
        if df["n_seeds"].max() > 1
        else None
    )
    title = "Table 3: MMIL ablation, Recall / NDCG @20 (test split)"
    return _emit(
        df,
        tables.markdown_table(df, "variant", ABLATION_METRICS, title, FOCUS, pv),
        tagged("table3", tag),
        tables.latex_side_by_side(df, "variant", ABLATION_METRICS, title, FOCUS, pv),
    )


def render_figure(figure: int, base: dict[str, dict[str, Any]] | None = None) -> Renderer:
    """``base``: per dataset, the model config the sweep starts from (MMIL's tuned one)."""

    def render(records: list[Record], tag: str) -> list[Path]:
        from .figures import draw

        frame = experiments.sensitivity_frame(figure, records, base)
        paths = tables.write_table(frame, None, results_dir() / tagged(f"figure{figure}", tag))
        syn = any(r.dataset.synthetic for r in records)
        return paths + draw(figure, frame, figures_dir(), "synthetic data" if syn else "", tag)

    return render


def build(opts: Options, datasets: list[str], models: list[str]) -> list[Artefact]:
    # --report with --tune renders the searches' page only (driver.produce), not every artefact
    named = opts.table is not None or opts.ablation or opts.figure or opts.sensitivity or opts.tune
    every = opts.all or (opts.report and not named)
    tuned = {} if opts.untuned else tuning.load_choices()
    focus = {d: point for (d, m), point in tuned.items() if m == FOCUS}  # Table 3 and the figures start there
    out = []
    if opts.table == 2 or every:
        out.append(
            Artefact(
                "Table 2",
                ["--table", "2"],
                experiments.table2_specs(
                    datasets, models, opts.seeds or [0], opts.epochs, opts.mask_valid_at_test, tuned
                ),
                render_table2,
                TABLE2_MODELS,
            )
        )
    if opts.ablation or every:
        out.append(
            Artefact(
                "Table 3",
                ["--ablation"],
                experiments.ablation_specs(
                    datasets, VARIANTS, opts.seeds or list(ABLATION_SEEDS), opts.epochs, opts.mask_valid_at_test, focus
                ),
                render_table3,
            )
        )
    for fig in sorted(set(opts.figure or []) | ({2, 3, 4} if opts.sensitivity or every else set())):
        out.append(
            Artefact(
                f"Figure {fig}",
                ["--figure", str(fig)],
                experiments.sensitivity_specs(fig, datasets, opts.seeds or [0], opts.epochs, focus),
                render_figure(fig, {d: tuning.split_point(point)[0] for d, point in focus.items()}),
            )
        )
    for a in out:
        a.specs = protocol(opts, a.specs)
    return out


def protocol(opts: Options, specs: list[RunSpec]) -> list[RunSpec]:
    """The command line's precision, thread count and kind of device, set on every run it asks for."""
    device = device_kind(opts.device)
    return [replace(s, precision=opts.precision, threads=opts.threads, device=device) for s in specs]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
