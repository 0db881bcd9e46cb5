"""The device check script, on the CPU: rows written, parity measured, failures reported."""

from __future__ import annotations

import json
from pathlib import Path

from benchmark.device_check import main


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
