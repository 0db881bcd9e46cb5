"""Table 1 as files: rows, checksums and source lines, re-checked where the data is here."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmark.data import load_dataset
from benchmark.study.table1 import render_table1, unavailable

from .test_driver import run


def test_table1_is_written_and_rechecked(tmp_path: Path) -> None:
    done = run(["--table", "1", "--datasets", "synthetic-tiny"], tmp_path)
    assert done.returncode == 0, done.stderr
    md = (tmp_path / "results" / "table1.md").read_text()
    checksum = load_dataset("synthetic-tiny").checksum
    assert "| synthetic-tiny (synthetic) |" in md and f"`synthetic-tiny` (checksum `{checksum}`): synthetic" in md
    csv = pd.read_csv(tmp_path / "results" / "table1.csv")
    assert csv["checksum"].tolist() == [checksum] and csv["users"].iloc[0] == load_dataset("synthetic-tiny").n_users
    ok = run(["--report", "--check"], tmp_path)
    assert ok.returncode == 0 and "all reproduced" in ok.stderr, ok.stderr
    (tmp_path / "results" / "table1.md").write_text(md.replace("synthetic-tiny (synthetic)", "tiny"))
    bad = run(["--report", "--check"], tmp_path)
    assert bad.returncode == 1 and "results/table1.md: differs" in bad.stderr


def test_table1_is_not_rechecked_where_its_data_is_not(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MMIL_BENCH_HOME", str(tmp_path))
    _, csv = render_table1(["synthetic-tiny"], None)
    assert unavailable(["synthetic-tiny"], None, csv) is None
    frame = pd.read_csv(csv)
    frame["checksum"] = "0123456789abcdef"
    frame.to_csv(csv, index=False)
    assert "synthetic-tiny loads with checksum" in (unavailable(["synthetic-tiny"], None, csv) or "")
    missing = unavailable(["tiktok"], tmp_path / "no-data", csv) or ""
    assert "its data does not load here" in missing and "tiktok" in missing
