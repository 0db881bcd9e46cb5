"""Running a list of specs: train what the store lacks, locally or on a Dask cluster.

A run checkpoints its full state into the store every few minutes (``CHECKPOINT_SECONDS``); a
rerun of the same command resumes a killed run from its checkpoint and finishes with exactly the
numbers of an uninterrupted one. Records are written by the driver, atomically, as runs come back.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import torch

from ..config import ConfigError, config_dict
from ..data import load_dataset
from ..paths import ROOT
from ..registry import get_model
from ..trainer import Log, resolve_device, seed_everything, stderr_log, train
from .estimate import History, longest_first, time_left
from .record import DatasetInfo, Record
from .spec import RunSpec
from .store import RunStore

CHECKPOINT_SECONDS = 300.0
# What a run's numbers depend on. Rendered tables, figures and records under results/ and
# figures/ are outputs: their being newer than the last commit must not mark a run "-dirty".
CODE_PATHS = ("benchmark", "baselines", "mmil", "run_all.py", "pyproject.toml")


def _git_describe(root: Path = ROOT) -> str:
    """``git describe`` of ``root``, with ``-dirty`` only where a file under CODE_PATHS differs
    from the commit (tracked edits, or untracked files that git does not ignore)."""
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "describe", "--always"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        if not head:
            return "unknown"
        changed = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", *CODE_PATHS],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return f"{head}-dirty" if changed else head
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# read once per process: a record names the code its process imported, not whatever was
# committed while it trained
_CODE_VERSION = _git_describe()


def code_version() -> str:
    return _CODE_VERSION


def _round(a: np.ndarray) -> list[float]:
    return [round(float(x), 6) for x in a]


def hardware(dev: torch.device) -> str:
    """The machine as a record names it, with the vector instructions torch's CPU kernels use:
    the same run on an AVX-512 and an AVX2 CPU differs in the last bits (a LightGCN run's L2 term
    from the sixth epoch on, in our first comparison), so a record says which it had. Records made
    before this field named it came from AVX2 machines."""
    return f"{platform.machine()}, {os.cpu_count()} cpus, {cpu_capability()}, torch {torch.__version__}" + (
        f", {torch.cuda.get_device_name(dev)}" if dev.type == "cuda" else ""
    )


def cpu_capability() -> str:
    return f"CPU kernels {torch.backends.cpu.get_cpu_capability()}"


def recorded_cpu_capability(hardware_line: str) -> str:
    """The CPU kernel set a record's hardware line names (``AVX2`` for records made before it did);
    ``AVX2+AVX512`` for a run resumed on machines with different sets, which none reproduces."""
    found = dict.fromkeys(re.findall(r"CPU kernels ([^,;]+)", hardware_line))
    return "+".join(found) or "AVX2"


def run_one(
    spec: RunSpec,
    store: RunStore,
    device: str | None = None,
    log: Log | None = stderr_log,
    checkpoint_seconds: float = CHECKPOINT_SECONDS,
    stop: Callable[[list[dict[str, float]]], bool] | None = None,
) -> Record:
    """Train and test one run (resuming its checkpoint if the store holds one) at the spec's
    thread count, on ``device`` (``cuda:1``, say; by default the kind its spec names); returns its
    record, which the caller writes. A run of a search (``spec.search``) never reads the test
    split, and ``stop`` (its pruner) may end it early."""
    torch.set_num_threads(spec.threads)
    data = load_dataset(spec.dataset, store.data_root)
    mcfg, tcfg = spec.resolved()
    dev = resolve_device(device or spec.device)
    if dev.type != spec.device:
        raise ConfigError(f"{spec.label()}: the run is specified on {spec.device}, asked to train on {dev}")
    seed_everything(spec.seed)
    cls = get_model(spec.model)
    t0 = time.perf_counter()
    model = cls(data, mcfg).to(dev)
    ckpt = store.checkpoint_path(spec)
    result = train(
        model,
        data,
        tcfg,
        spec.seed,
        spec.mask_valid_at_test,
        log=log,
        label=spec.label(),
        precision=spec.precision,
        checkpoint=ckpt,
        checkpoint_seconds=checkpoint_seconds,
        stop=stop,
        read_test=not spec.search,
        machine=hardware(dev),
    )
    test = result.test
    summary = data.summary()
    record = Record(
        spec=spec,
        key=store.key(spec),
        config=config_dict(mcfg),
        train_config=config_dict(tcfg),
        dataset=DatasetInfo(**summary, checksum=data.checksum, source=data.source),  # type: ignore[arg-type]
        model={"name": spec.model, "n_parameters": sum(p.numel() for p in model.parameters()), **model.describe()},
        epochs_capped=spec.epochs is not None,
        code_version=code_version(),
        device=str(dev),
        hardware="; resumed on ".join(result.machines),
        torch_threads=torch.get_num_threads(),
        history=result.history,
        epochs_run=result.epochs_run,
        stopped_early=result.stopped_early,
        best_epoch=result.best_epoch,
        valid=result.best_valid,
        test=test.mean if test else {},
        mask_valid_at_test=spec.mask_valid_at_test,
        test_per_user={k: _round(test.per_user[k]) for k in ("recall@20", "precision@20", "ndcg@20")} if test else {},
        test_users=int(len(test.users)) if test else 0,
        seconds_per_epoch=result.seconds_per_epoch,
        eval_seconds=result.eval_seconds,
        # a resumed run adds the training and evaluation time its checkpoint recorded
        total_seconds=time.perf_counter() - t0 + result.seconds_before_resume,
        # CUDA: this run's peak; CPU: the process's peak RSS, which includes earlier runs of the
        # same process (python -m benchmark.study.speed --models measures each model alone)
        peak_memory_mb=result.peak_memory_mb,
        finished=time.strftime("%Y-%m-%dT%H:%M:%S"),
        resumed=result.resumed,
        pruned=result.pruned,
        continued_from=result.origin,
    )
    return record


def _worker(
    spec: RunSpec,
    store: RunStore,
    device: str | None,
    verbose: bool,
    force: bool = False,
    checkpoint_seconds: float = CHECKPOINT_SECONDS,
) -> tuple[Record, bool]:
    """The run's record and whether it was trained here: a record written since the driver made
    its list (by another driver on the same store) is taken as it is."""
    if not force and (rec := store.get(spec)) is not None:
        return rec, False
    return run_one(spec, store, device, stderr_log if verbose else None, checkpoint_seconds), True


_WATCHED_PARENT: int | None = None  # the driver a pool worker watches


def _exit_with_driver(poll_seconds: float = 2.0) -> None:
    """In a pool worker: exit as soon as the driver that started it is gone. A driver killed
    (SIGTERM, SIGKILL, a closed terminal) leaves its loky workers orphaned, blocked for good on
    a write to its pipe and holding their run's memory (two MMGCN workers on Clothing kept 455
    and 469 MB); a rerun would start beside them. The run's checkpoint, at most the checkpoint interval
    old, is where the rerun resumes. Idempotent: one watcher per worker process."""
    global _WATCHED_PARENT
    if _WATCHED_PARENT is not None:
        return
    _WATCHED_PARENT = parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-driver", daemon=True).start()


def _pool_worker(
    spec: RunSpec, store: RunStore, device: str | None, verbose: bool, force: bool, checkpoint_seconds: float
) -> tuple[Record, bool]:
    """`_worker` in a process of the local pool, which must not outlive its driver."""
    _exit_with_driver()
    return _worker(spec, store, device, verbose, force, checkpoint_seconds)


def unique(specs: Iterable[RunSpec]) -> list[RunSpec]:
    return list({s.identity(): s for s in specs}.values())


def execute(
    specs: Iterable[RunSpec],
    store: RunStore,
    device: str | None = None,
    jobs: int = 1,
    force: bool = False,
    verbose: bool = True,
    progress: Callable[[str], None] = stderr_log,
    backend: str = "loky",
    scheduler: str | None = None,
    checkpoint_seconds: float = CHECKPOINT_SECONDS,
) -> list[Record]:
    """Run every spec whose record is missing (all with ``force``); return every record, in order.

    ``backend="loky"`` runs ``jobs`` local processes; ``backend="dask"`` hands the runs to the
    Dask cluster at ``scheduler`` (``dask.distributed`` must be installed).
    """
    specs = unique(specs)
    todo = specs if force else store.missing(specs)
    if len(specs) > len(todo):
        progress(f"{len(specs) - len(todo)} of {len(specs)} runs already recorded, skipped")
    if todo:
        _run(todo, store, device, jobs, force, verbose, progress, backend, scheduler, checkpoint_seconds)
    out = []
    for s in specs:
        rec = store.get(s)
        if rec is None:
            raise RuntimeError(f"{s.label()}: no record after running")
        out.append(rec)
    return out


def _run(
    todo: list[RunSpec],
    store: RunStore,
    device: str | None,
    jobs: int,
    force: bool,
    verbose: bool,
    progress: Callable[[str], None],
    backend: str,
    scheduler: str | None,
    checkpoint_seconds: float,
) -> None:
    parallel = jobs > 1 or backend == "dask"
    history = History(store.all())
    if parallel:
        todo = longest_first(todo, history)
    estimated = {store.key(s): (e.typical_seconds if (e := history.estimate(s)) else None) for s in todo}
    finished: set[str] = set()
    args = (store, device, verbose, force, checkpoint_seconds)
    t0 = time.perf_counter()
    client = None
    results: Iterator[tuple[Record, bool]]
    if backend == "dask":
        from dask.distributed import Client, as_completed  # optional dependency: the `dask` extra

        client = Client(scheduler) if scheduler else Client(processes=False)
        futures = client.map(_worker, todo, *([a] * len(todo) for a in args), pure=False)
        results = (f.result() for f in as_completed(futures))
    elif jobs <= 1:
        results = (_worker(s, *args) for s in todo)
    else:
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=jobs, return_as="generator_unordered")(delayed(_pool_worker)(s, *args) for s in todo)
    for n, (rec, ran) in enumerate(results, start=1):
        if ran:
            store.put(rec)
            store.checkpoint_path(rec.spec).unlink(missing_ok=True)
        el = time.perf_counter() - t0
        finished.add(rec.key)
        left = time_left(
            el, [estimated.get(k) for k in finished], [v for k, v in estimated.items() if k not in finished]
        )
        progress(
            f"runs {n}/{len(todo)} done ({rec.spec.label()[1:-1]}: "
            f"test recall@20 {rec.test['recall@20']:.4f}"
            f"{'' if ran else ', recorded meanwhile by another process'}); "
            f"{el:.0f}s elapsed, about {left:.0f}s left"
        )
    if client is not None and scheduler:
        client.close()
