"""Run specs, their execution, and the run records under ``results/runs/``.

A run is a pure function of (dataset, model, config, seed). Its record is one JSON file named by
a hash of the resolved spec (dataset checksum included), written atomically (temporary file,
then rename): an interrupted run leaves nothing, and a finished one is never run again unless
forced.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import torch

from .atomic import write_text_atomic
from .config import TrainConfig, build_config, config_dict
from .data import load_dataset
from .estimate import History, longest_first, time_left
from .paths import ROOT, runs_dir
from .registry import get_model
from .trainer import Log, seed_everything, stderr_log, train

RECORD_VERSION = 1


@dataclass(frozen=True, eq=False)
class RunSpec:
    """What defines a run. ``config`` / ``train`` override the model's and the trainer's defaults;
    ``epochs`` caps training (recorded as capped)."""

    dataset: str
    model: str
    seed: int = 0
    config: Mapping[str, Any] = field(default_factory=dict)
    train: Mapping[str, Any] = field(default_factory=dict)
    epochs: int | None = None
    mask_valid_at_test: bool = False

    def resolved(self) -> tuple[Any, TrainConfig]:
        cls = get_model(self.model)
        mcfg = build_config(cls.Config, self.config, where=f"{self.model} config")
        tcfg = build_config(TrainConfig, {**cls.train_defaults, **self.train}, where=f"{self.model} train config")
        if self.epochs is not None:
            tcfg = build_config(TrainConfig, {**config_dict(tcfg), "max_epochs": min(self.epochs, tcfg.max_epochs)})
        return mcfg, tcfg

    def label(self) -> str:
        extra = ",".join(f"{k}={v}" for k, v in sorted({**self.config, **self.train}.items()))
        return f"[{self.dataset}/{self.model}{'(' + extra + ')' if extra else ''} seed {self.seed}]"

    def key(self, data_root: Path | None) -> str:
        mcfg, tcfg = self.resolved()
        data = load_dataset(self.dataset, data_root)
        ident = {"dataset": self.dataset, "checksum": data.checksum, "model": self.model,
                 "seed": self.seed, "config": config_dict(mcfg), "train": config_dict(tcfg),
                 "capped": self.epochs is not None, "mask_valid_at_test": self.mask_valid_at_test,
                 "version": RECORD_VERSION}
        return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]


def code_version() -> str:
    """The commit of the checkout (``-dirty`` with uncommitted edits), read once per process: a
    record names the code its process imported, not whatever was committed while it trained."""
    return _CODE_VERSION


# What a run's numbers depend on. Rendered tables, figures and records under results/ and
# figures/ are outputs: their being newer than the last commit must not mark a run "-dirty".
CODE_PATHS = ("benchmark", "baselines", "mmil", "run_all.py", "pyproject.toml")


def _git_describe(root: Path = ROOT) -> str:
    """``git describe`` of ``root``, with ``-dirty`` only where a file under CODE_PATHS differs
    from the commit (tracked edits, or untracked files that git does not ignore)."""
    try:
        head = subprocess.run(["git", "-C", str(root), "describe", "--always"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
        if not head:
            return "unknown"
        changed = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", *CODE_PATHS],
                                 capture_output=True, text=True, timeout=10).stdout.strip()
        return f"{head}-dirty" if changed else head
    except (OSError, subprocess.SubprocessError):
        return "unknown"


_CODE_VERSION = _git_describe()


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine")
    return dev


def _round(a: np.ndarray) -> list[float]:
    return [round(float(x), 6) for x in a]


def write_atomic(path: Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=1))


def record_path(spec: RunSpec, data_root: Path | None, directory: Path | None = None) -> Path:
    return (directory or runs_dir()) / f"{spec.key(data_root)}.json"


def run_one(spec: RunSpec, data_root: Path | None, device: str = "auto",
            log: Log | None = stderr_log) -> dict[str, Any]:
    """Train and test one run; returns its record (the caller writes it)."""
    data = load_dataset(spec.dataset, data_root)
    mcfg, tcfg = spec.resolved()
    dev = resolve_device(device)
    seed_everything(spec.seed)
    cls = get_model(spec.model)
    t0 = time.perf_counter()
    model = cls(data, mcfg).to(dev)
    result = train(model, data, tcfg, spec.seed, spec.mask_valid_at_test, log=log, label=spec.label())
    record = {
        "spec": {**asdict(spec), "config": dict(spec.config), "train": dict(spec.train)},
        "key": spec.key(data_root),
        "config": config_dict(mcfg), "train_config": config_dict(tcfg),
        "dataset": {**data.summary(), "checksum": data.checksum, "source": data.source},
        "model": {"name": spec.model, "n_parameters": sum(p.numel() for p in model.parameters()),
                  **model.describe()},
        "epochs_capped": spec.epochs is not None,
        "code_version": code_version(),
        "device": str(dev), "hardware": f"{platform.machine()}, {os.cpu_count()} cpus, torch {torch.__version__}"
                  + (f", {torch.cuda.get_device_name(dev)}" if dev.type == "cuda" else ""),
        "torch_threads": torch.get_num_threads(),
        "history": result.history, "epochs_run": result.epochs_run,
        "stopped_early": result.stopped_early, "best_epoch": result.best_epoch,
        "valid": result.best_valid, "test": result.test.mean,
        "mask_valid_at_test": spec.mask_valid_at_test,
        "test_per_user": {k: _round(result.test.per_user[k]) for k in ("recall@20", "precision@20", "ndcg@20")},
        "test_users": int(len(result.test.users)),
        "seconds_per_epoch": result.seconds_per_epoch, "eval_seconds": result.eval_seconds,
        "total_seconds": time.perf_counter() - t0,
        # CUDA: this run's peak; CPU: the process's peak RSS, which includes earlier runs of the
        # same process (python -m benchmark.speed --models measures each model alone)
        "peak_memory_mb": result.peak_memory_mb,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    return record


def load_record(spec: RunSpec, data_root: Path | None, directory: Path | None = None) -> dict[str, Any] | None:
    path = record_path(spec, data_root, directory)
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def _worker(spec: RunSpec, data_root: Path | None, device: str, threads: int, verbose: bool,
            directory: Path | None = None, force: bool = False) -> tuple[dict[str, Any], bool]:
    """The run's record and whether it was trained here: a record written since the driver made
    its list (by another driver on the same results) is taken as it is."""
    if not force and (rec := load_record(spec, data_root, directory)) is not None:
        return rec, False
    torch.set_num_threads(threads)
    return run_one(spec, data_root, device, stderr_log if verbose else None), True


def existing(specs: Iterable[RunSpec], data_root: Path | None, directory: Path | None = None) -> list[dict[str, Any]]:
    """The records already written for ``specs`` (missing ones left out); trains nothing."""
    return [r for r in (load_record(s, data_root, directory) for s in specs) if r is not None]


def execute(specs: Iterable[RunSpec], data_root: Path | None, device: str = "auto", jobs: int = 1,
            force: bool = False, directory: Path | None = None, verbose: bool = True,
            progress: Callable[[str], None] = stderr_log, backend: str = "loky",
            scheduler: str | None = None) -> list[dict[str, Any]]:
    """Run every spec whose record is missing (all with ``force``); return every record, in order.

    ``backend="loky"`` runs ``jobs`` local processes; ``backend="dask"`` hands the runs to the
    Dask cluster at ``scheduler`` (``dask.distributed`` must be installed). Records are written
    here, by the driver, as each run comes back.
    """
    specs = list({json.dumps(asdict(s), sort_keys=True, default=dict): s for s in specs}.values())
    todo = [s for s in specs if force or load_record(s, data_root, directory) is None]
    done_before = len(specs) - len(todo)
    if done_before:
        progress(f"{done_before} of {len(specs)} runs already recorded, skipped")
    if todo:
        threads = max(1, (os.cpu_count() or 1) // max(jobs, 1))
        history = History.load(directory)
        if jobs > 1 or backend == "dask":
            todo = longest_first(todo, history)
        by_key = {s.key(data_root): s for s in todo}
        estimated = {k: (e.typical_seconds if (e := history.estimate(s)) else None) for k, s in by_key.items()}
        finished: set[str] = set()
        args = [data_root, device, threads if jobs > 1 or backend == "dask" else torch.get_num_threads(),
                verbose, directory, force]
        t0 = time.perf_counter()
        client = None
        if backend == "dask":
            from dask.distributed import Client, as_completed  # optional dependency: the `dask` extra
            client = Client(scheduler) if scheduler else Client(processes=False)
            futures = client.map(_worker, todo, *([a] * len(todo) for a in args), pure=False)
            results: Iterable[tuple[dict[str, Any], bool]] = (f.result() for f in as_completed(futures))
        elif jobs <= 1:
            results = (_worker(s, *args) for s in todo)
        else:
            from joblib import Parallel, delayed
            results = Parallel(n_jobs=jobs, return_as="generator_unordered")(
                delayed(_worker)(s, *args) for s in todo)
        for n, (rec, ran) in enumerate(results, start=1):
            if ran:
                write_atomic(record_path(by_key[rec["key"]], data_root, directory), rec)
            el = time.perf_counter() - t0
            finished.add(rec["key"])
            left = time_left(el, [estimated[k] for k in finished],
                             [v for k, v in estimated.items() if k not in finished])
            progress(f"runs {n}/{len(todo)} done ({rec['spec']['dataset']}/{rec['spec']['model']} "
                     f"seed {rec['spec']['seed']}: test recall@20 {rec['test']['recall@20']:.4f}"
                     f"{'' if ran else ', recorded meanwhile by another process'}); "
                     f"{el:.0f}s elapsed, about {left:.0f}s left")
        if client is not None and scheduler:
            client.close()
    out = []
    for s in specs:
        rec = load_record(s, data_root, directory)
        if rec is None:
            raise RuntimeError(f"{s.label()}: no record after running")
        out.append(rec)
    return out
