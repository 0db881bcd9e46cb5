"""Timing benchmark (a script, not a test): ``python -m benchmark.speed [--data-root DIR]``.

Prints, on the Baby split (or a synthetic preset when the real data is absent):

1. one LightGCN training epoch through the shared loop (sampling, batches, Adam steps);
2. one full-ranking evaluation pass over every test user (top-50, all metrics);
3. the propagation hot path (3 layers forward + backward) with torch's CSR backward, with the
   suite's `SparseOperator`, and with PyG's ``LGConv`` over an ``edge_index``;
4. the peak resident memory of a LightGCN run on Clothing (a child process, epochs capped).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .config import TrainConfig, build_config
from .data import load_dataset
from .evaluator import evaluate
from .graphs import adjacency_operator, normalised_adjacency
from .paths import ROOT
from .registry import get_model
from .sampling import interaction_keys
from .trainer import peak_memory_mb, run_epoch, seed_everything, train

SHARED = ROOT.parent / "shared" / "data"


def best_of(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def lightgcn(dataset: str, root: Path | None):  # type: ignore[no-untyped-def]
    data = load_dataset(dataset, root)
    cls = get_model("lightgcn")
    seed_everything(0)
    return data, cls(data, build_config(cls.Config))


def time_epoch_and_eval(dataset: str, root: Path | None, repeats: int) -> dict[str, float]:
    data, model = lightgcn(dataset, root)
    cfg = build_config(TrainConfig, get_model("lightgcn").train_defaults)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
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
        def run() -> None:
            h = x
            for _ in range(3):
                h = step(h)
            h.sum().backward()
        return run

    return {"torch_csr_s": best_of(layers(lambda h: torch.sparse.mm(csr, h)), repeats),
            "sparse_operator_s": best_of(layers(op), repeats),
            "pyg_lgconv_s": best_of(layers(lambda h: conv(h, edge_index, weight)), repeats)}


def child_peak_memory(dataset: str, root: Path | None, epochs: int) -> None:
    """Run in a child process: a LightGCN run with the shared trainer; prints JSON."""
    data, model = lightgcn(dataset, root)
    cfg = build_config(TrainConfig, {"max_epochs": epochs})
    t = time.perf_counter()
    train(model, data, cfg, 0, log=None)
    print(json.dumps({"peak_mb": peak_memory_mb(torch.device("cpu")), "seconds": time.perf_counter() - t,
                      "epochs": epochs}))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", type=Path, default=SHARED)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--memory-epochs", type=int, default=3, help="epochs of the Clothing memory run")
    p.add_argument("--child", nargs=2, metavar=("DATASET", "EPOCHS"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    root = args.data_root if args.data_root.is_dir() else None
    if args.child:
        child_peak_memory(args.child[0], root, int(args.child[1]))
        return
    small, big = ("amazon-baby", "amazon-clothing") if root and (root / "amazon-baby").is_dir() \
        else ("synthetic-baby", "synthetic-clothing")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; datasets {small}, {big}")
    r = time_epoch_and_eval(small, root, args.repeats)
    print(f"LightGCN epoch on {small}: {r['epoch_s']:.2f} s;  full-ranking pass "
          f"({r['eval_users']} users, top-50): {r['eval_s']:.2f} s")
    prop = time_propagation(small, root, args.repeats)
    print("propagation, 3 layers fwd+bwd: " + ", ".join(f"{k[:-2]} {v:.3f} s" for k, v in prop.items()))
    cmd = [sys.executable, "-m", "benchmark.speed", "--data-root", str(args.data_root), "--child", big,
           str(args.memory_epochs)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=True).stdout.strip().splitlines()[-1]
    mem = json.loads(out)
    print(f"LightGCN run on {big} ({mem['epochs']} epochs + validations + test): peak RSS "
          f"{mem['peak_mb']:.0f} MB, {mem['seconds']:.1f} s")


if __name__ == "__main__":
    main()
