"""The device check script, on the CPU: rows written, parity measured, failures reported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

import benchmark.device_check as dc
from benchmark.device_check import KNN_TIE_GAP, knn_flips, main
from benchmark.graphs import knn_graph
from benchmark.paths import ROOT
from benchmark.registry import model_names


def test_device_check_rows_and_failure(tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    assert main(["--device", "cpu", "--datasets", "synthetic-tiny", "--models", "bpr", "mmil", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [(r["model"], r["ok"]) for r in rows] == [("bpr", True), ("mmil", True)]
    assert all(r["score_parity_rel"] == 0.0 and r["epoch_s"] > 0 for r in rows)
    # a tolerance nothing can meet marks every row failed and the exit status says so
    assert (
        main(
            [
                "--device",
                "cpu",
                "--datasets",
                "synthetic-tiny",
                "--models",
                "bpr",
                "--tolerance",
                "-1",
                "--out",
                str(out),
            ]
        )
        == 1
    )
    assert json.loads(out.read_text())[0]["ok"] is False


def test_a_checkout_without_install_finds_every_model(tmp_path: Path) -> None:
    # the device machine runs a copied tree with no entry points: it once found no model, so the
    # check checked nothing and exited 0
    code = (
        "import importlib.metadata as m; m.entry_points = lambda **kw: []\n"
        "from benchmark.registry import model_names; print(len(model_names()))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    assert int(out.stdout) == len(model_names()) == 18  # as many as an installed tree finds: Table 2 and the six extra


def test_knn_flips_tells_a_tie_from_a_wrong_neighbour() -> None:
    # item 0's second neighbour is item 1 or item 2, tied (equal vectors); item 3 is far off
    x = torch.tensor([[1.0, 0.0], [1.0, 1.0], [1.0, 1.0], [0.0, 1.0]])
    here = knn_graph(x, 2)
    cols = here.coalesce().indices()[1].view(4, 2).clone()
    tied, wrong = cols.clone(), cols.clone()
    tied[0] = torch.tensor([0, 2 if 1 in cols[0] else 1])
    wrong[0] = torch.tensor([0, 3])

    def graph(c: torch.Tensor) -> torch.Tensor:
        return torch.sparse_coo_tensor(
            torch.stack([torch.arange(4).repeat_interleave(2), c.flatten()]), torch.ones(8), (4, 4)
        )

    assert knn_flips(x, here, graph(cols), 2) == (0, 0.0)
    n, gap = knn_flips(x, here, graph(tied), 2)
    assert n == 1 and gap < KNN_TIE_GAP
    n, gap = knn_flips(x, here, graph(wrong), 2)
    assert n == 1 and abs(gap - 2**-0.5) < 1e-6


def test_a_score_difference_passes_only_when_ties_explain_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def row(gap: float, flips: int = 34) -> Callable[..., dict[str, Any]]:
        return lambda m, d, root, device: {
            "model": m, "dataset": d, "device": "cpu", "score_parity_rel": 0.027, "knn_rows_differing": flips,
            "knn_similarity_gap": gap, "loss_finite": True, "epoch_s": 1.0, "eval_s": 0.1, "peak_memory_mb": 1.0,
        }  # fmt: skip

    out = tmp_path / "rows.json"
    args = ["--device", "cpu", "--datasets", "synthetic-tiny", "--models", "lattice", "--out", str(out)]
    monkeypatch.setattr(dc, "check_one", row(1e-7))
    assert main(args) == 0 and json.loads(out.read_text())[0]["ok_by_knn_ties"] is True
    for wrong in (row(0.3), row(0.0, flips=0)):  # a wrong neighbour, or a difference with no tie
        monkeypatch.setattr(dc, "check_one", wrong)
        assert main(args) == 1 and json.loads(out.read_text())[0]["ok"] is False
