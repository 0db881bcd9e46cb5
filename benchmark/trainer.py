"""The one training loop every model shares.

Per epoch: every training pair once in a fresh order, uniform negatives, Adam steps on
``model.loss``. Every ``eval_every`` epochs the validation metric is computed; training stops
after ``patience`` validations without improvement (never before ``min_epochs``), the best
state is restored, and the test split is evaluated exactly once, at the end.
"""
from __future__ import annotations

import copy
import math
import resource
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

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
    test: EvalResult
    epochs_run: int
    stopped_early: bool
    seconds_per_epoch: float
    eval_seconds: float
    peak_memory_mb: float
    extra: dict[str, object] = field(default_factory=dict)


def seed_everything(seed: int) -> None:
    """Seed torch and numpy; ask torch for deterministic kernels (scatter-adds in backward
    otherwise differ in the last bits between runs, and the runs drift apart)."""
    torch.use_deterministic_algorithms(True, warn_only=True)
    # deterministic mode also NaN-fills every torch.empty (10-15 % of a GRCN or MMGCN step); the
    # kernels stay deterministic without it, and no kernel reads memory it has not written
    torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    # ru_maxrss is in KiB on Linux: the process's peak resident memory
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_optimizer(model: Recommender, cfg: TrainConfig) -> torch.optim.Adam:
    """Adam with the fused kernel: one pass over each parameter per step instead of about seven
    elementwise ones, which on the ID tables is most of an optimiser step (same update rule)."""
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)


def run_epoch(model: Recommender, data: Dataset, opt: torch.optim.Optimizer, cfg: TrainConfig,
              keys: np.ndarray, rng: np.random.Generator) -> dict[str, float]:
    """One pass over every training pair (fresh order, fresh negatives); mean of each loss term."""
    device = model.device
    users, pos = epoch_pairs(data.train, rng)
    neg = sample_negatives(users, keys, data.n_items, cfg.n_negatives, rng)
    if cfg.n_negatives == 1:
        neg = neg[:, 0]
    sums: dict[str, float] = {}
    n_batches = 0
    for s in range(0, len(users), cfg.batch_size):
        batch = Batch(torch.from_numpy(users[s:s + cfg.batch_size]),
                      torch.from_numpy(pos[s:s + cfg.batch_size]),
                      torch.from_numpy(neg[s:s + cfg.batch_size])).to(device)
        terms = model.loss(batch)
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        opt.step()
        for k, v in terms.items():
            sums[k] = sums.get(k, 0.0) + float(v.detach())
        n_batches += 1
    return {k: v / n_batches for k, v in sums.items()}


def train(model: Recommender, data: Dataset, cfg: TrainConfig, seed: int,
          mask_valid_at_test: bool = False, log: Log | None = stderr_log, label: str = "") -> TrainResult:
    device = model.device
    rng = np.random.default_rng(seed)
    keys = interaction_keys(data.train)
    opt = make_optimizer(model, cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: cfg.lr_decay ** (e / 50))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    history: list[dict[str, float]] = []
    best_val, best_epoch, best_state, bad = -math.inf, 0, None, 0
    train_time, eval_time, stopped_early = 0.0, 0.0, False
    t_start = time.perf_counter()
    epoch = 0
    for epoch in range(1, cfg.max_epochs + 1):
        t0 = time.perf_counter()
        model.train()
        model.start_epoch(epoch)
        row: dict[str, float] = {"epoch": epoch, **run_epoch(model, data, opt, cfg, keys, rng)}
        sched.step()
        if not math.isfinite(row["loss"]):
            raise FloatingPointError(f"{label}: loss became {row['loss']} at epoch {epoch}")
        train_time += time.perf_counter() - t0
        if epoch % cfg.eval_every == 0 or epoch == cfg.max_epochs:
            val = evaluate(model, data, "valid", batch_users=cfg.eval_batch_users)
            eval_time += val.seconds
            row.update({f"valid_{k}": v for k, v in val.mean.items() if k.endswith("@20")})
            current = val.mean[cfg.metric]
            if current > best_val:
                best_val, best_epoch, bad = current, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
                best_metrics = dict(val.mean)
            else:
                bad += 1
            if log:
                per = (time.perf_counter() - t_start) / epoch
                log(f"{label} epoch {epoch}/{cfg.max_epochs} loss {row['loss']:.4f} "
                    f"valid {cfg.metric} {current:.4f} (best {best_val:.4f} @ {best_epoch}) "
                    f"{per:.2f}s/epoch, at most {per * (cfg.max_epochs - epoch):.0f}s left")
            if bad >= cfg.patience and epoch >= cfg.min_epochs:
                stopped_early = True
                history.append(row)
                break
        history.append(row)

    if best_state is None:
        raise RuntimeError(f"{label}: no validation was run")
    model.load_state_dict(best_state)
    test = evaluate(model, data, "test", mask_valid=mask_valid_at_test, batch_users=cfg.eval_batch_users)
    if log:
        log(f"{label} done: best epoch {best_epoch}, test recall@20 {test.mean['recall@20']:.4f} "
            f"ndcg@20 {test.mean['ndcg@20']:.4f}")
    return TrainResult(history, best_epoch, best_metrics, test, epoch, stopped_early,
                       train_time / max(epoch, 1), eval_time, peak_memory_mb(device))
