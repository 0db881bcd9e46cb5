"""Timing benchmark (a script, not a test): ``python -m benchmark.study.speed [--data-root DIR]``.

Prints, on the Baby split (or a synthetic preset when the real data is absent):

1. one LightGCN training epoch through the shared loop (sampling, batches, Adam steps);
2. one full-ranking evaluation pass over every test user (top-50, all metrics);
3. the propagation hot path (LightGCN's mean of 3 layers, forward + backward) layer by layer with
   torch's CSR backward, with PyG's ``LGConv`` over an ``edge_index`` and with the suite's
   `SparseOperator`, and as the suite's one layer-mean operator (`benchmark.graphs.propagate`);
4. the peak resident memory of a LightGCN run on Clothing (a child process, epochs capped);
5. with ``--models``, the peak resident memory and seconds per epoch of each named model on
   ``--memory-dataset`` (default synthetic-clothing), each in a fresh child process whose peak
   counter is reset once the data is loaded, beside the resident size of the data alone. (A run record's ``peak_memory_mb`` is its process's peak,
   which includes earlier runs of the same process: use this for per-model figures.)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..config import TrainConfig, build_config
from ..data import load_dataset
from ..evaluator import evaluate
from ..graphs import adjacency_operator, normalised_adjacency, propagate
from ..model import Batch
from ..paths import ROOT
from ..registry import get_model
from ..sampling import epoch_pairs, interaction_keys, sample_negatives
from ..trainer import make_optimizer, peak_memory_mb, run_epoch, seed_everything, train
from .floor import ProductCount, best_of, gemm_rate, spmm_rate

SHARED = ROOT.parent / "shared" / "data"


def build(model: str, dataset: str, root: Path | None):  # type: ignore[no-untyped-def]
    data = load_dataset(dataset, root)
    cls = get_model(model)
    seed_everything(0)
    return data, cls(data, build_config(cls.Config))


def time_epoch_and_eval(dataset: str, root: Path | None, repeats: int) -> dict[str, float]:
    data, model = build("lightgcn", dataset, root)
    cfg = build_config(TrainConfig, get_model("lightgcn").train_defaults)
    opt = make_optimizer(model, cfg)
    keys, rng = interaction_keys(data.train), np.random.default_rng(0)
    epoch = best_of(lambda: run_epoch(model, data, opt, cfg, keys, rng), repeats)
    ev = best_of(lambda: evaluate(model, data, "test"), repeats)
    n_users = int((np.diff(data.test.indptr) > 0).sum())
    return {"epoch_s": epoch, "eval_s": ev, "eval_users": n_users}


def time_propagation(dataset: str, root: Path | None, repeats: int) -> dict[str, float]:
    from torch_geometric.nn import LGConv

    data = load_dataset(dataset, root)
    csr = normalised_adjacency(data.train)
    op = adjacency_operator(data.train)
    coo = csr.to_sparse_coo().coalesce()
    edge_index, weight = coo.indices(), coo.values()
    conv = LGConv(normalize=False)
    x = torch.randn(csr.shape[0], 64, requires_grad=True)

    def layers(step: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], None]:
        def run() -> None:  # LightGCN's layer mean, one layer at a time
            h = out = x
            for _ in range(3):
                h = step(h)
                out = out + h
            (out / 4).sum().backward()

        return run

    return {
        "torch_csr_s": best_of(layers(lambda h: torch.sparse.mm(csr, h)), repeats),
        "pyg_lgconv_s": best_of(layers(lambda h: conv(h, edge_index, weight)), repeats),
        "sparse_operator_s": best_of(layers(op), repeats),
        "layer_mean_operator_s": best_of(lambda: propagate(op, x, 3).sum().backward(), repeats),
    }


def time_steps(model: str, data, steps: int, warmup: int = 1, precision: str = "fp32") -> dict[str, float]:  # type: ignore[no-untyped-def]
    """CPU and wall seconds of one training epoch of ``model`` on ``data``, timed over ``steps``
    optimiser steps of the shared loop (after ``warmup``) and scaled to the epoch's step count.
    The epoch's first step, with ``start_epoch`` and the refresh it triggers (a learned graph's
    rebuild, a re-clustering), is timed once on its own. ``dense_flops``, ``sparse_macs``: the
    epoch's products (`floor.ProductCount`)."""
    cls = get_model(model)
    seed_everything(0)
    net = cls(data, build_config(cls.Config))
    cfg = build_config(TrainConfig, cls.train_defaults)
    opt = make_optimizer(net, cfg)
    rng = np.random.default_rng(0)
    keys = interaction_keys(data.train)
    users, pos = epoch_pairs(data.train, rng)
    neg = sample_negatives(users, keys, data.n_items, cfg.n_negatives, rng)
    if cfg.n_negatives == 1:
        neg = neg[:, 0]
    n_steps = -(-len(users) // cfg.batch_size)
    net.train()

    def step(i: int) -> None:
        s = (i % n_steps) * cfg.batch_size
        batch = Batch(*(torch.from_numpy(a[s : s + cfg.batch_size]) for a in (users, pos, neg)))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = net.loss(batch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def first_step() -> None:  # an epoch's first step also refreshes what start_epoch marks stale
        net.start_epoch(1)
        step(0)

    first_step()
    for i in range(1, warmup):
        step(i)
    c0, w0 = time.process_time(), time.perf_counter()
    first_step()
    first_cpu, first_wall = time.process_time() - c0, time.perf_counter() - w0
    c0, w0 = time.process_time(), time.perf_counter()
    for i in range(1, 1 + steps):
        step(i)
    cpu, wall = (time.process_time() - c0) / steps, (time.perf_counter() - w0) / steps
    with ProductCount() as first:  # counted after the timing, which the counter would slow
        first_step()
    with ProductCount() as later:
        step(1)
    return {
        "cpu_s": first_cpu + cpu * (n_steps - 1),
        "wall_s": first_wall + wall * (n_steps - 1),
        "steps": n_steps,
        "dense_flops": first.dense_flops + later.dense_flops * (n_steps - 1),
        "sparse_macs": first.sparse_macs + later.sparse_macs * (n_steps - 1),
    }


def per_model_table(
    models: list[str], dataset: str, root: Path | None, steps: int, precisions: tuple[str, ...] = ("fp32",)
) -> list[str]:
    """Seconds per training epoch of each model beside LightGCN's, measured in this one process
    (one thread), as the ratio of CPU time and of wall time: the ratio is the figure of merit on
    a shared machine, the absolute seconds are not. With ``bf16`` in ``precisions`` each model is
    also timed under bfloat16 autocast (the ratio stays to LightGCN's fp32 epoch).

    The last three columns are the epoch's products and their floor (`floor`): dense GFLOP,
    sparse multiply-adds (G), and the fewest CPU seconds they take at the rates this process
    measures (a large dense product; the dataset's graph product), as a ratio to LightGCN's
    epoch: a model whose floor ratio exceeds its target cannot meet it at the same maths here.
    ``x floor``: the measured epoch over its floor (1.0 would be all time in products)."""
    torch.set_num_threads(1)
    data = load_dataset(dataset, root)
    dense_rate, sparse_rate = gemm_rate(), spmm_rate(normalised_adjacency(data.train))
    base = time_steps("lightgcn", data, steps)
    lines = [
        f"{dataset}, 1 thread, {steps} steps timed per model after 1 warm-up, scaled to an epoch "
        f"({base['steps']:.0f} steps of LightGCN's batch); this core: dense products "
        f"{dense_rate / 1e9:.0f} GFLOP/s, the graph's product {sparse_rate / 1e9:.1f} G multiply-adds/s",
        f"{'model':10s} {'cpu s/epoch':>12s} {'wall s/epoch':>13s} {'cpu ratio':>10s} {'wall ratio':>11s} "
        f"{'dense GFLOP':>12s} {'sparse GMAC':>12s} {'floor ratio':>12s} {'x floor':>8s}",
    ]
    for m in models:
        for precision in precisions:
            r = base if m == "lightgcn" and precision == "fp32" else time_steps(m, data, steps, precision=precision)
            floor = r["dense_flops"] / dense_rate + r["sparse_macs"] / sparse_rate
            lines.append(
                f"{m + ('' if precision == 'fp32' else ' ' + precision):10s} {r['cpu_s']:12.2f} {r['wall_s']:13.2f} "
                f"{r['cpu_s'] / base['cpu_s']:10.1f} {r['wall_s'] / base['wall_s']:11.1f} "
                f"{r['dense_flops'] / 1e9:12.1f} {r['sparse_macs'] / 1e9:12.2f} "
                f"{floor / base['cpu_s']:12.1f} "
                + (f"{r['cpu_s'] / floor:8.1f}" if floor > 1e-3 * r["cpu_s"] else f"{'-':>8s}")
            )
    return lines


def _proc_status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak_rss() -> bool:
    """Restart the kernel's peak-RSS counter (Linux: ``5 > /proc/self/clear_refs``), so that a
    run's peak excludes the synthetic generator's transient peak while it built the data."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def child_peak_memory(model: str, dataset: str, root: Path | None, epochs: int) -> None:
    """Run in a child process: a capped run of ``model`` with the shared trainer (``none``: load
    the data only); prints JSON. With the peak counter reset after loading, ``peak_mb`` is the
    peak RSS of building and training the model with the data resident."""
    import gc

    load_dataset(dataset, root)
    gc.collect()
    resident = _proc_status_mb("VmRSS")
    reset = reset_peak_rss()
    if model == "none":
        print(json.dumps({"peak_mb": resident, "seconds_per_epoch": 0.0, "reset": reset}))
        return
    data, net = build(model, dataset, root)
    cfg = build_config(TrainConfig, {**get_model(model).train_defaults, "max_epochs": epochs, "min_epochs": 0})
    res = train(net, data, cfg, 0, log=None)
    peak = _proc_status_mb("VmHWM") if reset else peak_memory_mb(torch.device("cpu"))
    print(json.dumps({"peak_mb": peak, "seconds_per_epoch": res.seconds_per_epoch, "reset": reset}))


def measure_in_child(model: str, dataset: str, data_root: Path, epochs: int) -> dict[str, float]:
    cmd = [
        sys.executable,
        "-m",
        "benchmark.study.speed",
        "--data-root",
        str(data_root),
        "--child",
        model,
        dataset,
        str(epochs),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", type=Path, default=SHARED)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--memory-epochs", type=int, default=3, help="epochs of the Clothing memory run")
    p.add_argument("--models", nargs="+", help="also measure these models' peak memory and s/epoch")
    p.add_argument("--memory-dataset", default="synthetic-clothing", help="dataset of the --models runs")
    p.add_argument("--only-models", action="store_true", help="skip the LightGCN timings (1-4)")
    p.add_argument(
        "--per-model",
        metavar="DATASET",
        help="seconds per epoch of each --models model beside LightGCN's on DATASET, one thread",
    )
    p.add_argument("--with-bf16", action="store_true", help="with --per-model: also time bf16 autocast")
    p.add_argument("--steps", type=int, default=10, help="with --per-model: steps timed per model")
    p.add_argument("--child", nargs=3, metavar=("MODEL", "DATASET", "EPOCHS"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    root = args.data_root if args.data_root.is_dir() else None
    if args.child:
        child_peak_memory(args.child[0], args.child[1], root, int(args.child[2]))
        return
    if args.per_model:
        precisions = ("fp32", "bf16") if args.with_bf16 else ("fp32",)
        print("\n".join(per_model_table(args.models or ["lightgcn"], args.per_model, root, args.steps, precisions)))
        return
    if args.models:
        base = measure_in_child("none", args.memory_dataset, args.data_root, 0)["peak_mb"]
        print(
            f"{args.memory_dataset}, {args.memory_epochs} epochs each, fresh process per model; "
            f"peak RSS with the data resident (data alone: {base:.0f} MB RSS)"
        )
        for m in args.models:
            r = measure_in_child(m, args.memory_dataset, args.data_root, args.memory_epochs)
            print(f"  {m:10s} {r['seconds_per_epoch']:7.2f} s/epoch   peak RSS {r['peak_mb']:6.0f} MB")
        if args.only_models:
            return
    small, big = (
        ("amazon-baby", "amazon-clothing")
        if root and (root / "amazon-baby").is_dir()
        else ("synthetic-baby", "synthetic-clothing")
    )
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; datasets {small}, {big}")
    r = time_epoch_and_eval(small, root, args.repeats)
    print(
        f"LightGCN epoch on {small}: {r['epoch_s']:.2f} s;  full-ranking pass "
        f"({r['eval_users']} users, top-50): {r['eval_s']:.2f} s"
    )
    prop = time_propagation(small, root, args.repeats)
    print("propagation, mean of 3 layers fwd+bwd: " + ", ".join(f"{k[:-2]} {v:.3f} s" for k, v in prop.items()))
    mem = measure_in_child("lightgcn", big, args.data_root, args.memory_epochs)
    print(
        f"LightGCN run on {big} ({args.memory_epochs} epochs + validations + test): peak RSS "
        f"{mem['peak_mb']:.0f} MB, {mem['seconds_per_epoch']:.1f} s/epoch"
    )


if __name__ == "__main__":
    main()
