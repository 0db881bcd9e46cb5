"""What ``run_all.py`` does once its arguments are parsed: train what an artefact lacks, render
it from the records, and keep the manifest that lets ``--report --check`` re-render every
committed artefact from the committed records.

The manifest (``results/artefacts.json``) maps each file an invocation wrote to the options that
wrote it and the keys of the records it was rendered from; ``--check`` replays every entry into a
scratch folder and compares.
"""

from __future__ import annotations

import io
import json
import os
import random
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any

from ..atomic import write_text_atomic
from ..data import available, real_datasets
from ..paths import ROOT, cache_dir, figures_dir, results_dir, runs_dir
from ..registry import UnknownModel, model_names
from ..trainer import device_kind, resolve_device
from . import tuning
from .artefacts import Artefact, Options, build, display_path, log, protocol
from .definition import SYNTHETIC_DEFAULT, TABLE2_MODELS
from .estimate import History, expected_search_seconds
from .execute import execute, recorded_cpu_capability, run_one
from .record import Record
from .search import Pruning, grid_points, run_search
from .search_report import render_searches
from .spec import RunSpec
from .store import MissingRecords, RunStore

# the options that decide what an invocation renders (the rest say how it trains)
RENDER_OPTIONS = (
    "tune",
    "table",
    "ablation",
    "figure",
    "sensitivity",
    "all",
    "datasets",
    "models",
    "seeds",
    "epochs",
    "data_root",
    "mask_valid_at_test",
    "precision",
    "threads",
    "untuned",
    "tag",
)


def manifest_path() -> Path:
    return results_dir() / "artefacts.json"


def load_manifest() -> dict[str, dict[str, Any]]:
    p = manifest_path()
    return json.loads(p.read_text()) if p.is_file() else {}


def _relative(p: Path) -> str:
    return str(p.resolve().relative_to(Path(os.environ.get("MMIL_BENCH_HOME", ROOT)).resolve()))


def record_in_manifest(
    files: list[Path], opts: Options, datasets: list[str], models: list[str], keys: list[str]
) -> None:
    options = {k: v for k, v in asdict(opts).items() if k in RENDER_OPTIONS}
    options.update(datasets=datasets, models=models, data_root=display_path(opts.data_root), report=True)
    # the kind, not "auto": re-rendered on another machine, the artefact must find the same records
    if (device := device_kind(opts.device)) != "cpu":
        options["device"] = device
    entry = {"options": options, "records": sorted(set(keys))}
    manifest = load_manifest()
    for f in files:
        manifest[_relative(f)] = entry
    write_text_atomic(manifest_path(), json.dumps(manifest, indent=1, sort_keys=True) + "\n")


class RecordIndex:
    """Every current record of a store by its spec as given: rendering needs no dataset loaded.
    A record whose key is not the one today's code gives its spec (on the dataset checksum it
    records) was made under other defaults (MMIL's epoch cap before 572a676): kept as evidence,
    never rendered. A spec that names a default value (Figure 2's μ = 0.01 point is MMIL's own
    default) shares its key, and so its record, with the spec that leaves it out: it is found by
    the key it gives on the checksums recorded for its dataset."""

    def __init__(self, store: RunStore) -> None:
        self.by_spec: dict[str, Record] = {}
        self.by_key: dict[str, Record] = {}
        self.checksums: dict[str, set[str]] = {}
        for r in store.all():
            if r.spec.key(r.dataset.checksum) != r.key:
                continue
            self.by_key[r.key] = r
            self.checksums.setdefault(r.spec.dataset, set()).add(r.dataset.checksum)
            ident = r.spec.identity()
            if ident in self.by_spec and self.by_spec[ident].key != r.key:
                raise ValueError(
                    f"two records for {r.spec.label()} in {store.directory}: {self.by_spec[ident].key} "
                    f"and {r.key} (a dataset changed?); remove the stale one"
                )
            self.by_spec[ident] = r

    def records(self, arts: list[Artefact]) -> list[list[Record]]:
        """The records of each artefact; MissingRecords names the first run that has none."""
        out = []
        for a in arts:
            found = {s.identity(): self.find(s) for s in a.specs}
            missing = [s for s in a.specs if found[s.identity()] is None]
            if missing:
                raise MissingRecords(
                    f"{a.name}: {len(missing)} of {len(a.specs)} runs have no record in "
                    f"{display_path(runs_dir())}, first {missing[0].label()}; nothing was written "
                    "(train them without --report, or narrow --datasets/--models)"
                )
            out.append([found[s.identity()] for s in a.specs])
        return out

    def find(self, spec: RunSpec) -> Record | None:
        """``spec``'s record: by the spec as given, else by its key (a default named explicitly)."""
        if (r := self.by_spec.get(spec.identity())) is not None:
            return r
        keys = (spec.key(c) for c in sorted(self.checksums.get(spec.dataset, ())))
        return next((self.by_key[k] for k in keys if k in self.by_key), None)


def resolve(opts: Options) -> tuple[list[str], list[str]]:
    datasets = opts.datasets or real_datasets(opts.data_root) or list(SYNTHETIC_DEFAULT)
    known = set(model_names())
    models = opts.models or [m for m in TABLE2_MODELS if m in known]
    for m in models + tuned_models(opts):
        if m not in known:
            raise UnknownModel(f"unknown model {m!r}; known: {sorted(known)}")
    return datasets, models


def tuned_models(opts: Options) -> list[str]:
    """``--tune``'s models in order, ``all`` standing for every Table 2 model."""
    names = [n for m in opts.tune or [] for n in (TABLE2_MODELS if m == "all" else (m,))]
    return list(dict.fromkeys(names))


def jobs(opts: Options) -> int:
    """--jobs, or by default one process per ``--threads`` cores on CPU (one on a GPU: its
    runs would queue on the one device anyway)."""
    if opts.jobs:
        return opts.jobs
    if resolve_device(opts.device).type != "cpu":
        return 1
    return max(1, (os.cpu_count() or 1) // opts.threads)


def run(opts: Options, store: RunStore, specs: list[RunSpec]) -> list[Record]:
    """`execute` with the command line's execution options (one place, so tuning runs honour
    --jobs, --backend and --checkpoint-minutes exactly as artefact runs do)."""
    return execute(
        specs,
        store,
        opts.device,
        jobs(opts),
        opts.force,
        verbose=not opts.quiet,
        backend=opts.backend,
        scheduler=opts.scheduler,
        checkpoint_seconds=opts.checkpoint_minutes * 60,
    )


def produce(opts: Options, store: RunStore | None = None) -> int:
    """The main flow: Table 1, tuning, training what is missing, rendering."""
    t0 = time.perf_counter()
    if opts.list:
        print("datasets:", " ".join(available(opts.data_root)))
        print("models:  ", " ".join(model_names()))
        return 0
    store = store or RunStore(runs_dir(), opts.data_root)
    datasets, models = resolve(opts)
    if opts.table == 1:
        from .table1 import render_table1

        files = render_table1(datasets, opts.data_root, opts.tag)
        print(files[0].read_text(), end="")
        for p in files:
            log(f"wrote {p}")
        record_in_manifest(files, opts, datasets, [], [])
    if opts.tune:
        if opts.plan:
            print("\n".join(search_plan(opts, store, datasets)))
        else:
            if not opts.report:
                tune(opts, store, datasets)
            files, keys = render_searches(tuning.load_tuned(), store, opts.tag)
            for p in files:
                log(f"wrote {p}")
            record_in_manifest(
                files,
                replace(opts, table=None, ablation=False, figure=None, sensitivity=False, all=False),
                datasets,
                tuned_models(opts),
                keys,
            )
    arts = build(opts, datasets, models)
    if not arts:
        return 0
    if opts.plan:
        print("\n".join(plan(arts, store)))
        return 0
    if not opts.report:
        log(" + ".join(f"{a.name}: {len(a.specs)} runs" for a in arts))
        run(opts, store, [s for a in arts for s in a.specs])
    per_artefact = RecordIndex(store).records(arts)
    commands, rendered, written, all_records = [], [], [], []
    for a, records in zip(arts, per_artefact):
        written += a.render(records, opts.tag)
        commands.append("python run_all.py " + " ".join(a.command(records, opts.data_root, opts.tag, opts.untuned)))
        rendered.append(a.name)
        all_records += records
    if opts.all or opts.report:
        from .report_page import write_report

        uniq = list({r.key: r for r in all_records}.values())
        table2 = next((recs for a, recs in zip(arts, per_artefact) if a.name == "Table 2"), [])
        written.append(write_report(uniq, commands, rendered, opts.tag, table2))
    for p in written:
        log(f"wrote {p}")
    record_in_manifest(written, opts, datasets, models, [r.key for r in all_records])
    log(f"total {time.perf_counter() - t0:.0f}s")
    return 0


def plan(arts: list[Artefact], store: RunStore) -> list[str]:
    """Per artefact and dataset: runs needed, recorded, to run; the one-process time of those
    to run, estimated from the recorded runs (``benchmark.study.estimate``); and the whole
    campaign's, the recorded runs' own seconds (as their records give them, on whatever
    machine made them) plus that estimate."""
    history = History(store.all())
    lines, typical, worst, unknown, seen, recorded = [], 0.0, 0.0, 0, set(), 0.0
    for a in arts:
        for d in dict.fromkeys(s.dataset for s in a.specs):
            specs = [s for s in a.specs if s.dataset == d]
            keys = [store.key(s) for s in specs]
            todo = [s for s, k in zip(specs, keys) if k not in seen and not store.has(s)]
            recorded += sum(r.total_seconds for k in set(keys) - seen if (r := store.by_key(k)) is not None)
            seen.update(keys)
            for s in todo:
                e = history.estimate(s)
                if e is None:
                    unknown += 1
                    continue
                typical += e.typical_seconds
                worst += e.worst_seconds
            # a killed run, or seed 0 of a tuned table handed its search point's training: the
            # estimate still counts them whole
            resuming = sum(store.checkpoint_path(s).is_file() for s in todo)
            lines.append(
                f"{a.name} / {d}: {len(specs)} runs, {len(specs) - len(todo)} recorded or shared, {len(todo)} to run"
                + (f" ({resuming} from a checkpoint)" if resuming else "")
            )
    lines.append(
        f"to run: about {typical / 3600:.1f} h in one process if runs stop where recorded ones did, "
        f"at most {worst / 3600:.1f} h"
        + (f"; {unknown} run(s) of a dataset and model with no record to estimate from" if unknown else "")
    )
    lines.append(
        f"whole campaign: {recorded / 60:.0f} min recorded + about {typical / 60:.0f} min to run "
        f"= {(recorded + typical) / 60:.0f} min in one process"
    )
    return lines


def tune(opts: Options, store: RunStore, datasets: list[str]) -> None:
    """Search the grid of each of ``opts.tune``'s models, one after another, on each dataset
    (validation only, pruned by successive halving); each choice goes to results/tuned.json as
    soon as its search ends, so a stopped series keeps what it finished."""
    models = tuned_models(opts)
    if opts.grid and len(models) > 1:
        raise ValueError("--grid goes with one --tune model: a grid's keys are one model's")
    searches = [(m, d) for m in models for d in datasets]
    for i, (model, d) in enumerate(searches, 1):
        log(f"search {i} / {len(searches)}: {model} on {d}")
        tune_one(opts, store, model, d)


def search_of(opts: Options, model: str, d: str) -> tuple[list[RunSpec], list[dict[str, Any]], Pruning]:
    """The runs of one search (``model``'s grid, or ``--grid``, on dataset ``d``), its grid points
    and its pruning rule."""
    grid = tuning.parse_grid(opts.grid) if opts.grid else tuning.grid_of(model)
    pruning = Pruning().for_model(max(tuning.point_train_config(model, d, p).min_epochs for p in grid_points(grid)))
    specs, points = tuning.search_specs(model, d, grid, pruning, (opts.seeds or [0])[0], opts.epochs)
    return protocol(opts, specs), points, pruning


def unrecorded(store: RunStore, specs: list[RunSpec]) -> list[bool]:
    """Per search point, whether it still has to be trained: neither it nor the same point run
    outside the search (which `run_search` replays) is recorded."""
    return [not (store.has(s) or store.has(replace(s, search=""))) for s in specs]


def search_plan(opts: Options, store: RunStore, datasets: list[str]) -> list[str]:
    """Per search of ``--tune``: grid points, those recorded (or replayed from a plain run), those
    to run, the one-process time they are expected to take under the pruner
    (`estimate.expected_search_seconds`) and an upper bound (each point a full run, as the
    recorded runs of that model and dataset took)."""
    history = History(store.all())
    lines, expected, worst, unknown = [], 0.0, 0.0, 0
    for model in tuned_models(opts):
        for d in datasets:
            specs, _, pruning = search_of(opts, model, d)
            todo = unrecorded(store, specs)
            for s in (s for s, t in zip(specs, todo) if t):
                e = history.estimate(s)
                worst += e.worst_seconds if e else 0.0
            seconds = expected_search_seconds(specs, todo, pruning.min_epochs, pruning.reduction, history)
            unknown += sum(todo) if seconds is None else 0
            expected += sum(seconds or [])
            lines.append(
                f"search {model} / {d}: {len(specs)} points, {len(specs) - sum(todo)} recorded, {sum(todo)} to run"
                + (f", about {sum(seconds) / 3600:.1f} h" if seconds and any(todo) else "")
            )
    lines.append(
        f"to run: about {expected / 3600:.1f} h in one process under successive halving (a rough guide: "
        f"searches so far took 0.6-2.4 times their estimate), at most {worst / 3600:.1f} h (every point to its end)"
        + (f"; {unknown} point(s) of a dataset and model with no finished run to estimate from" if unknown else "")
    )
    return lines


def tune_one(opts: Options, store: RunStore, model: str, d: str) -> None:
    """One search: ``model``'s grid (or ``--grid``) on dataset ``d``; its choice to tuned.json."""
    specs, points, pruning = search_of(opts, model, d)
    log(f"tuning {model} on {d}: {len(specs)} grid points, {pruning.describe()}")
    todo = unrecorded(store, specs)
    expected = expected_search_seconds(specs, todo, pruning.min_epochs, pruning.reduction, History(store.all()))
    result = run_search(
        specs,
        points,
        store,
        pruning,
        opts.device,
        None if opts.quiet else log,
        opts.checkpoint_minutes * 60,
        progress=log,
        expected_seconds=expected,
    )
    tuning.save_choice(d, model, result)
    print(
        f"{d} / {model}: chose {result.best.point} (valid recall@20 "
        f"{result.best.valid:.4f}; {result.summary()['pruned']} of {len(points)} "
        f"points pruned) -> {display_path(tuning.tuned_path())}"
    )
    for t in sorted(result.trials, key=lambda t: -t.valid):
        print(
            f"    valid recall@20 {t.valid:.4f}  epochs {t.epochs:3d}{' pruned' if t.pruned else '       '}  {t.point}"
        )


@contextmanager
def _home(path: Path) -> Iterator[None]:
    """Outputs go under ``path``; the cache stays where it is (Table 1 reads MovieLens-100K's
    prepared text features from it)."""
    pinned = {"MMIL_BENCH_HOME": str(path), "MMIL_BENCH_CACHE": str(cache_dir())}
    old = {k: os.environ.get(k) for k in pinned}
    os.environ.update(pinned)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                del os.environ[k]
            else:
                os.environ[k] = v


# drawn files are compared by the frame they are drawn from (results/figureN.csv): their bytes
# depend on the matplotlib and freetype builds of the machine
COMPARED_BY_DATA = (".png", ".pdf")
NOT_ARTEFACTS = ("artefacts.json", "tuned.json")


def check(opts: Options) -> int:
    """Re-render every committed artefact from the committed records into a scratch folder and
    compare; returns 1 naming each file that differs, is missing or has no manifest entry, and
    each record trained at another thread count than its spec names."""
    res, figs, store = results_dir(), figures_dir(), RunStore(runs_dir(), opts.data_root)
    manifest = load_manifest()
    home = Path(os.environ.get("MMIL_BENCH_HOME", ROOT))
    problems = []
    on_disk = [
        p
        for p in list(res.glob("*")) + list(figs.glob("*"))
        if p.is_file() and p.name not in NOT_ARTEFACTS and not p.name.startswith(".")
    ]
    for p in on_disk:
        if _relative(p) not in manifest:
            problems.append(f"{_relative(p)}: committed but no invocation in {manifest_path().name} renders it")
    problems += [
        f"{display_path(store.directory)}/{r.key}.json.gz: trained at {r.torch_threads} thread(s), its spec says {r.spec.threads}"
        for r in store.all()
        if r.device == "cpu" and r.torch_threads != r.spec.threads
    ]
    groups: dict[str, dict[str, Any]] = {json.dumps(e, sort_keys=True): e for e in manifest.values()}
    rendered: dict[str, bytes] = {}  # each manifest file as its own invocation re-rendered it
    skipped: list[str] = []  # Table 1 where its data is not here
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        (scratch / "results").mkdir()
        if tuning.tuned_path().is_file():
            (scratch / "results" / "tuned.json").write_bytes(tuning.tuned_path().read_bytes())
        with _home(scratch):
            # tagged reports first: the default REPORT.md links them
            for group, entry in sorted(groups.items(), key=lambda g: g[1]["options"].get("tag") == ""):
                gone = [
                    k
                    for k in entry["records"]
                    if not any((store.directory / f"{k}{ext}").is_file() for ext in (".json.gz", ".json"))
                ]
                if gone:
                    problems += [
                        f"{display_path(store.directory)}/{k}.json.gz: missing, and artefacts were rendered from it"
                        for k in gone
                    ]
                    continue
                names = {f.name for f in fields(Options)}
                # an entry without a device was rendered from CPU records
                o = replace(Options(), **{"device": "cpu", **{k: v for k, v in entry["options"].items() if k in names}})
                o.data_root = (ROOT / o.data_root) if not Path(o.data_root).is_absolute() else Path(o.data_root)
                o.quiet = True
                if o.table == 1:
                    from .table1 import unavailable

                    csv = next(home / rel for rel, e in manifest.items() if e == entry and rel.endswith(".csv"))
                    if reason := unavailable(o.datasets, o.data_root, csv):
                        skipped += [rel for rel, e in manifest.items() if e == entry]
                        log(f"check: {csv.name} not re-rendered: {reason}")
                        continue
                try:
                    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
                        produce(o, store)
                except MissingRecords as e:
                    problems.append(str(e))
                # read back before the next invocation renders: re-rendered with --report, one that
                # wrote no REPORT.md (`--ablation` alone) writes one over the invocation's that did
                for rel, e in manifest.items():
                    if json.dumps(e, sort_keys=True) == group and (scratch / rel).is_file():
                        rendered[rel] = (scratch / rel).read_bytes()
        for rel in sorted(manifest):
            mine = home / rel
            if not mine.is_file():
                problems.append(f"{rel}: in the manifest but not committed")
            elif rel in skipped:
                continue
            elif rel not in rendered:
                problems.append(f"{rel}: not re-rendered from the committed records")
            elif mine.suffix not in COMPARED_BY_DATA and mine.read_bytes() != rendered[rel]:
                problems.append(f"{rel}: differs when re-rendered from the committed records")
    for p in problems:
        log(f"check: {p}")
    log(
        f"check: {len(manifest)} artefact files, {len(groups)} invocations, "
        + ("all reproduced" if not problems else f"{len(problems)} problem(s)")
    )
    return 1 if problems else 0


def verify(opts: Options) -> int:
    """Retrain ``opts.verify`` committed runs (random, or the cheapest first within
    ``opts.verify_budget`` minutes) in a scratch store, each with its record's torch thread count,
    and report whether each reproduces its record's numbers to the last digit. A search's point
    is retrained as the search ran it: a pruned one stops where its pruner stopped it, and none
    reads the test split (its validation Recall@20 is what the line shows)."""
    store = RunStore(runs_dir(), opts.data_root)
    records = [
        r
        for r in store.all()
        if (not opts.datasets or r.spec.dataset in opts.datasets) and (not opts.models or r.spec.model in opts.models)
    ]
    if not records:
        raise MissingRecords(f"no records in {display_path(runs_dir())} to verify (of --datasets / --models)")
    if opts.verify_budget is not None:
        chosen, spent = [], 0.0
        for r in sorted(records, key=lambda r: r.total_seconds):
            if len(chosen) >= (opts.verify or len(records)) or spent + r.total_seconds > opts.verify_budget * 60:
                break
            chosen.append(r)
            spent += r.total_seconds
    else:
        chosen = random.Random(opts.seeds[0] if opts.seeds else None).sample(
            records, min(opts.verify or 1, len(records))
        )
    import torch

    failed = excused = 0
    here = torch.backends.cpu.get_cpu_capability()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = RunStore(Path(tmp), opts.data_root)
        for n, r in enumerate(chosen, 1):
            t = time.perf_counter()
            # records made before the spec named its threads carry the count in torch_threads
            stop = (lambda history, n=r.epochs_run: len(history) >= n) if r.pruned else None
            new = run_one(
                replace(r.spec, threads=r.torch_threads),
                scratch,
                "cpu" if r.spec.device == "cpu" else opts.device,
                None if opts.quiet else log,
                stop=stop,
            )
            mine, theirs = new.numbers(), r.numbers()
            split = "test" if r.test else "valid"
            diff = [k for k in theirs if mine[k] != theirs[k]]
            same = not diff
            elsewhere = recorded_cpu_capability(r.hardware)
            other_kernels = elsewhere != here and r.spec.device == "cpu"
            failed += not same and not other_kernels
            excused += not same and other_kernels
            print(
                f"verify {n}/{len(chosen)} {r.spec.label()} key {r.key} ({r.torch_threads} thread(s), "
                f"{time.perf_counter() - t:.0f}s; recorded by {r.code_version}): "
                + (
                    "reproduced exactly"
                    if same
                    else f"DIFFERS in {', '.join(diff)} ({split} recall@20 "
                    f"{getattr(new, split).get('recall@20')!r} against {getattr(r, split).get('recall@20')!r})"
                    + (f"; recorded with CPU kernels {elsewhere}, here {here}" if other_kernels else "")
                ),
                flush=True,
            )
    print(
        f"verify: {len(chosen) - failed - excused} of {len(chosen)} runs reproduced exactly"
        + (
            f"; {excused} differ and were recorded with other CPU kernels than this machine's {here} "
            "(expected in the last bits; not a failure)"
            if excused
            else ""
        )
    )
    return 1 if failed else 0
