"""The device check script, on the CPU: rows written, parity measured, failures reported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from benchmark.device_check import main
from benchmark.paths import ROOT


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
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert int(out.stdout) == 12
