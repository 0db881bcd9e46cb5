"""The one training loop every model shares.

Per epoch: every training pair once in a fresh order, uniform negatives, Adam steps on
``model.loss``. Every ``eval_every`` epochs the validation metric is computed; training stops
after ``patience`` validations without improvement (never before ``min_epochs``), the best
state is restored, and the test split is evaluated exactly once, at the end.
"""

from __future__ import annotations

import copy
import math
import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .config import TrainConfig
from .data import Dataset
from .evaluator import EvalResult, evaluate
from .model import Batch, Recommender
from .sampling import epoch_pairs, interaction_keys, sample_negatives

Log = Callable[[str], None]


def stderr_log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass
class TrainResult:
    history: list[dict[str, float]]
    best_epoch: int
    best_valid: dict[str, float]
    test: EvalResult | None  # None when the caller asked not to read the test split
    epochs_run: int
    stopped_early: bool
    seconds_per_epoch: float
    eval_seconds: float
    peak_memory_mb: float
    resumed: int = 0
    seconds_before_resume: float = 0.0  # training and evaluation time restored from a checkpoint
    pruned: bool = False  # stopped by the caller's ``stop`` rule (a search's pruner)
    origin: str = ""  # the run whose finished training this one took over (`hand_over`)
    machines: list[str] = field(default_factory=list)  # where it trained, in order (a resume may move it)


def seed_everything(seed: int) -> None:
    """Seed torch and numpy; ask torch for deterministic kernels (scatter-adds in backward
    otherwise differ in the last bits between runs, and the runs drift apart)."""
    torch.use_deterministic_algorithms(True, warn_only=True)
    # deterministic mode also NaN-fills every torch.empty (10-15 % of a GRCN or MMGCN step); the
    # kernels stay deterministic without it, and no kernel reads memory it has not written
    torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA when present, else the CPU; a named CUDA device must exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine")
    return dev


def device_kind(name: str) -> str:
    """``cpu`` or ``cuda`` for a ``--device`` value; ``auto`` as `resolve_device` picks it. A named
    kind needs no such device here: a GPU's records can be rendered on a CPU-only machine."""
    return resolve_device(name).type if name == "auto" else torch.device(name).type


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    # ru_maxrss is in KiB on Linux: the process's peak resident memory
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_optimizer(model: Recommender, cfg: TrainConfig) -> torch.optim.Adam:
    """Adam with the fused kernel: one pass over each parameter per step instead of about seven
    elementwise ones, which on the ID tables is most of an optimiser step (same update rule)."""
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)


def run_epoch(
    model: Recommender,
    data: Dataset,
    opt: torch.optim.Optimizer,
    cfg: TrainConfig,
    keys: np.ndarray,
    rng: np.random.Generator,
    precision: str = "fp32",
) -> dict[str, float]:
    """One pass over every training pair (fresh order, fresh negatives); mean of each loss term.
    ``precision="bf16"`` runs the loss and its backward under autocast (AMX on this CPU)."""
    device = model.device
    users, pos = epoch_pairs(data.train, rng)
    neg = sample_negatives(users, keys, data.n_items, cfg.n_negatives, rng)
    if cfg.n_negatives == 1:
        neg = neg[:, 0]
    sums: dict[str, float] = {}
    n_batches = 0
    bf16 = precision == "bf16"
    for s in range(0, len(users), cfg.batch_size):
        batch = Batch(
            torch.from_numpy(users[s : s + cfg.batch_size]),
            torch.from_numpy(pos[s : s + cfg.batch_size]),
            torch.from_numpy(neg[s : s + cfg.batch_size]),
        ).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            terms = model.loss(batch)
        opt.zero_grad(set_to_none=True)
        terms["loss"].float().backward()
        opt.step()
        for k, v in terms.items():
            sums[k] = sums.get(k, 0.0) + float(v.detach())
        n_batches += 1
    return {k: v / n_batches for k, v in sums.items()}


@dataclass
class _Progress:
    """Everything a resumed run needs besides the model and optimiser to continue exactly."""

    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best_val: float = -math.inf
    best_epoch: int = 0
    best_state: dict[str, torch.Tensor] | None = None
    best_metrics: dict[str, float] = field(default_factory=dict)
    bad: int = 0
    train_time: float = 0.0
    eval_time: float = 0.0
    stopped_early: bool = False
    pruned: bool = False
    resumed: int = 0
    origin: str = ""
    machines: list[str] = field(default_factory=list)


def save_checkpoint(
    path: Path,
    model: Recommender,
    opt: torch.optim.Optimizer,
    sched: object,
    rng: np.random.Generator,
    progress: _Progress,
) -> None:
    """The run's full state after an epoch, written atomically (a kill during the write leaves
    the previous checkpoint)."""
    state = {
        "model": model.state_dict(),
        "opt": opt.state_dict(),
        "sched": sched.state_dict(),  # type: ignore[attr-defined]
        "rng": rng.bit_generator.state,
        "np_global": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "progress": progress.__dict__,
    }
    _save_atomic(state, path)


def _save_atomic(state: dict[str, object], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(
    path: Path, model: Recommender, opt: torch.optim.Optimizer, sched: object, rng: np.random.Generator
) -> _Progress:
    state = torch.load(path, map_location=model.device, weights_only=False)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["opt"])
    sched.load_state_dict(state["sched"])  # type: ignore[attr-defined]
    rng.bit_generator.state = state["rng"]
    np.random.set_state(state["np_global"])
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    progress = _Progress(**state["progress"])
    progress.resumed += 1
    return progress


def hand_over(source: Path, target: Path, origin: str) -> None:
    """Move a finished run's checkpoint (saved at the end of its training) to ``target``, the
    checkpoint path of a run with the same training that also reads the test split; that run
    resumes from it, trains nothing and tests the same best state. ``origin`` (the finished
    run's record key) goes into the checkpoint and on into the result, so the record says whose
    training it holds."""
    state = torch.load(source, map_location="cpu", weights_only=False)
    progress = _Progress(**state["progress"])
    if progress.pruned or progress.best_state is None:
        raise ValueError(f"{source}: not the checkpoint of a finished run")
    state["progress"]["origin"] = origin
    _save_atomic(state, target)
    source.unlink()


def train(
    model: Recommender,
    data: Dataset,
    cfg: TrainConfig,
    seed: int,
    mask_valid_at_test: bool = False,
    log: Log | None = stderr_log,
    label: str = "",
    precision: str = "fp32",
    checkpoint: Path | None = None,
    checkpoint_seconds: float = 300.0,
    stop: Callable[[list[dict[str, float]]], bool] | None = None,
    read_test: bool = True,
    machine: str = "",
) -> TrainResult:
    """Train to early stop, restore the best state, test once.

    ``stop`` is asked after every validation, with the history so far, whether to stop here (a
    search's pruner; the result then says ``pruned``). With ``read_test=False`` the test split
    is never evaluated (a search's runs: its choice must not see it) and ``test`` is None.

    With ``checkpoint``, the full state (weights, optimiser, scheduler, every random generator,
    history, early-stopping state) is saved there after an epoch once ``checkpoint_seconds`` have
    passed since the last save (0: every epoch), and a checkpoint found there at the start is
    resumed from: the run then finishes with exactly the numbers of an uninterrupted one. The
    state at the end of training is saved too (so a kill while testing loses no training, and a
    search's finished point can `hand_over` its training); the caller removes the checkpoint
    once the run is recorded. ``machine`` (the caller's description of this machine) is appended
    to the result's ``machines`` when it differs from the one the checkpoint last trained on: a
    checkpoint carried to another kind of machine gives a run that neither reproduces exactly.
    """
    device = model.device
    rng = np.random.default_rng(seed)
    keys = interaction_keys(data.train)
    opt = make_optimizer(model, cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: cfg.lr_decay ** (e / 50))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    p = _Progress()
    before = 0.0
    if checkpoint is not None and checkpoint.is_file():
        p = load_checkpoint(checkpoint, model, opt, sched, rng)
        before = p.train_time + p.eval_time
        if log:
            log(f"{label} resumed from {checkpoint} after epoch {p.epoch}")
    if machine and (not p.machines or p.machines[-1] != machine):
        p.machines.append(machine)
    last_save = time.perf_counter()
    first_epoch = p.epoch
    t_start = time.perf_counter() - p.train_time - p.eval_time
    while not p.stopped_early and not p.pruned and p.epoch < cfg.max_epochs:
        epoch = p.epoch + 1
        t0 = time.perf_counter()
        model.train()
        model.start_epoch(epoch)
        row: dict[str, float] = {"epoch": epoch, **run_epoch(model, data, opt, cfg, keys, rng, precision)}
        sched.step()
        if not math.isfinite(row["loss"]):
            raise FloatingPointError(f"{label}: loss became {row['loss']} at epoch {epoch}")
        p.train_time += time.perf_counter() - t0
        if epoch % cfg.eval_every == 0 or epoch == cfg.max_epochs:
            val = evaluate(model, data, "valid", batch_users=cfg.eval_batch_users)
            p.eval_time += val.seconds
            row.update({f"valid_{k}": v for k, v in val.mean.items() if k.endswith("@20") or k == cfg.metric})
            current = val.mean[cfg.metric]
            if current > p.best_val:
                p.best_val, p.best_epoch, p.bad = current, epoch, 0
                p.best_state = copy.deepcopy(model.state_dict())
                p.best_metrics = dict(val.mean)
            else:
                p.bad += 1
            if log:
                per = (time.perf_counter() - t_start) / epoch
                log(
                    f"{label} epoch {epoch}/{cfg.max_epochs} loss {row['loss']:.4f} "
                    f"valid {cfg.metric} {current:.4f} (best {p.best_val:.4f} @ {p.best_epoch}) "
                    f"{per:.2f}s/epoch, at most {per * (cfg.max_epochs - epoch):.0f}s left"
                )
            p.stopped_early = p.bad >= cfg.patience and epoch >= cfg.min_epochs
        p.history.append(row)
        p.epoch = epoch
        if stop is not None and f"valid_{cfg.metric}" in row and stop(p.history):
            p.pruned = True
            if log:
                log(f"{label} pruned after epoch {epoch}")
        if (
            checkpoint is not None
            and not p.stopped_early
            and not p.pruned
            and p.epoch < cfg.max_epochs
            and time.perf_counter() - last_save >= checkpoint_seconds
        ):
            save_checkpoint(checkpoint, model, opt, sched, rng, p)
            last_save = time.perf_counter()

    if checkpoint is not None and not p.pruned and p.epoch > first_epoch:
        save_checkpoint(checkpoint, model, opt, sched, rng, p)
    if p.best_state is None:
        raise RuntimeError(f"{label}: no validation was run")
    model.load_state_dict(p.best_state)
    test = (
        evaluate(model, data, "test", mask_valid=mask_valid_at_test, batch_users=cfg.eval_batch_users)
        if read_test
        else None
    )
    if log and test is not None:
        log(
            f"{label} done: best epoch {p.best_epoch}, test recall@20 {test.mean['recall@20']:.4f} "
            f"ndcg@20 {test.mean['ndcg@20']:.4f}"
        )
    result = TrainResult(
        p.history,
        p.best_epoch,
        p.best_metrics,
        test,
        p.epoch,
        p.stopped_early,
        p.train_time / max(p.epoch, 1),
        p.eval_time,
        peak_memory_mb(device),
        resumed=p.resumed,
        seconds_before_resume=before,
        pruned=p.pruned,
        origin=p.origin,
        machines=p.machines,
    )
    return result
