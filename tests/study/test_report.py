"""Artefacts from hand-made records: table cells, best marking, improvement row, p-values;
the significance test on constructed data; figures; --report trains nothing."""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.study import experiments
from benchmark.study import tables as report
from benchmark.study.definition import FIGURES, TABLE2_METRICS
from benchmark.study.significance import compare, paired_pvalue
from benchmark.study.store import read_record

from ..conftest import driver_argv, driver_env
from .records import fake_record as record


def test_table_cells_best_and_improvement() -> None:
    recs = [
        record("toy", "lightgcn", 0, 0.10, [0.1, 0.1]),
        record("toy", "lightgcn", 1, 0.12, [0.1, 0.14]),
        record("toy", "mmil", 0, 0.15, [0.2, 0.1]),
        record("toy", "mmil", 1, 0.13, [0.1, 0.16]),
    ]
    df = experiments.table2_frame(recs)
    row = df[df.model == "mmil"].iloc[0]
    assert row["recall@20"] == pytest.approx(0.14)
    assert row["recall@20_std"] == pytest.approx(np.std([0.15, 0.13], ddof=1))
    md = report.markdown_table(df, "model", TABLE2_METRICS, "T", focus="mmil")
    assert "**0.1400 ± 0.0141**" in md  # best in bold, mean ± std
    assert "0.1100 ± 0.0141" in md and "**0.1100" not in md
    assert "+27.27% vs lightgcn" in md  # (0.14 - 0.11) / 0.11
    tex = report.latex_side_by_side(df, "model", TABLE2_METRICS, "T", focus="mmil")
    assert r"\textbf{0.1400 $\pm$ 0.0141}" in tex and r"+27.27\%" in tex


def test_paper_value_and_relative_difference() -> None:
    assert report.paper_cell(0.0735, 0.0700) == "0.0700 (+5.0%)"
    assert report.paper_cell(0.07, None) == "n/a"


def test_paired_test_known_answers() -> None:
    a = np.array([1.0, 2.0, 3.0, 4.0])
    b = a - np.array([0.1, 0.2, 0.1, 0.2])  # mean diff 0.15, sd 0.0577: t = 5.196, df 3
    assert paired_pvalue(a, b) == pytest.approx(0.01385, rel=1e-3)
    assert np.isnan(paired_pvalue(a, a))
    assert paired_pvalue(a, a - 1) == 0.0  # a constant gain is certain
    with pytest.raises(ValueError):
        paired_pvalue(a, a[:3])


def test_compare_pairs_users_and_seeds() -> None:
    rng = np.random.default_rng(0)
    base = rng.random(200)
    recs_a = [record("toy", "a", s, 0.2 + s / 100, list(base + 0.05)) for s in range(3)]
    recs_b = [record("toy", "b", s, 0.1 + s / 100, list(base)) for s in range(3)]
    p = compare(recs_a, recs_b)
    assert p["p_users"] == 0.0 and p["p_seeds"] == 0.0 and p["n_seeds"] == 3
    noise = [record("toy", "c", s, 0.1 + s / 100, list(base + rng.normal(0, 0.3, 200))) for s in range(3)]
    assert compare(noise, recs_b)["p_users"] > 0.01


def test_table2_with_seeds_and_a_metric_kept_only_as_a_mean() -> None:
    """Records hold per-user recall and NDCG but not precision: Table 2 over several seeds still
    renders, with the over-users p-value of precision n/a and its over-seeds one computed."""
    rng = np.random.default_rng(1)
    base = rng.random(50)
    recs = [
        record("toy", m, s, 0.1 + gain + s / 100 + rng.normal(0, 0.002), list(base + gain))
        for m, gain in (("lightgcn", 0.0), ("mmil", 0.05))
        for s in range(3)
    ]
    df = experiments.table2_frame(recs)
    pv = experiments.pvalues_vs_best(recs, df, "model", "mmil", TABLE2_METRICS)
    assert pv["toy"]["recall@20"]["p_users"] == 0.0
    assert np.isnan(pv["toy"]["precision@20"]["p_users"]) and pv["toy"]["precision@20"]["p_seeds"] < 0.01
    md = report.markdown_table(df, "model", TABLE2_METRICS, "T", "mmil", pv)
    row = next(l for l in md.splitlines() if l.startswith("| p-value"))
    assert "0 / " in row and "n/a / " in row


def test_figure_files(tmp_path: Path) -> None:
    from benchmark.study.figures import draw

    rows = [
        {
            "dataset": d,
            "parameter": p,
            "value": v,
            "recall@20": 0.1 + i / 100,
            "ndcg@20": 0.05,
            "recall@20_std": 0.01,
            "ndcg@20_std": np.nan,
        }
        for d in ("a", "b")
        for p, grid in FIGURES[3]
        for i, v in enumerate(grid)
    ]
    paths = draw(3, pd.DataFrame(rows), tmp_path)
    assert [p.name for p in paths] == ["figure3.png", "figure3.pdf"]
    assert all(p.stat().st_size > 1000 for p in paths)
    # no creation date, so a redraw from the same numbers gives the same PDF, whenever it runs
    assert b"CreationDate" not in paths[1].read_bytes()


def _driver(args: list[str], home: Path) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    return subprocess.run(driver_argv(*args), capture_output=True, text=True, env=driver_env(home), timeout=900)


def test_figure_command_and_report_trains_nothing(tmp_path: Path) -> None:
    args = ["--figure", "4", "--datasets", "synthetic-tiny", "--epochs", "1", "--quiet"]
    res = _driver(args, tmp_path)
    assert res.returncode == 0, res.stderr
    for suffix in ("png", "pdf"):
        assert (tmp_path / "figures" / f"figure4.{suffix}").stat().st_size > 1000
    frame = pd.read_csv(tmp_path / "results" / "figure4.csv")
    assert sorted(frame.value) == [16, 32, 64, 128, 256, 512]
    runs = sorted(p.name for p in (tmp_path / "results" / "runs").iterdir())
    (tmp_path / "figures" / "figure4.png").unlink()
    res = _driver(["--report", "--figure", "4", "--datasets", "synthetic-tiny", "--epochs", "1"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "runs 1/" not in res.stderr and "epoch 1/" not in res.stderr
    assert sorted(p.name for p in (tmp_path / "results" / "runs").iterdir()) == runs
    assert (tmp_path / "figures" / "figure4.png").is_file()
    page = (tmp_path / "results" / "REPORT.md").read_text()
    assert "Figure 4" in page
    version = read_record(next((tmp_path / "results" / "runs").glob("*.json.gz"))).code_version
    assert f"`{version}` (6 runs)" in page


def test_tune_chooses_on_validation(tmp_path: Path) -> None:
    res = _driver(["--tune", "bpr", "--datasets", "synthetic-tiny", "--epochs", "2", "--quiet"], tmp_path)
    assert res.returncode == 0, res.stderr
    import json

    chosen = json.loads((tmp_path / "results" / "tuned.json").read_text())["synthetic-tiny"]["bpr"]
    recs = [read_record(p) for p in (tmp_path / "results" / "runs").glob("*.json.gz")]
    assert chosen["valid_recall@20"] == pytest.approx(max(r.valid["recall@20"] for r in recs))
    # the Table 2 run then uses the chosen configuration
    res = _driver(
        ["--table", "2", "--datasets", "synthetic-tiny", "--models", "bpr", "--epochs", "2", "--quiet"], tmp_path
    )
    assert res.returncode == 0, res.stderr
    # ... in a record of its own (the search's runs never read the test split), which took over
    # the chosen point's finished training, and the report says so
    (table_run,) = [
        r for p in (tmp_path / "results" / "runs").glob("*.json.gz") if not (r := read_record(p)).spec.search
    ]
    assert {**table_run.spec.config, **table_run.spec.train} == chosen["config"]
    assert table_run.test and all(not r.test for r in recs)
    [best] = [t for t in chosen["trials"] if t["point"] == chosen["config"]]
    assert table_run.continued_from == best["key"]
    report = ["--report", "--table", "2", "--datasets", "synthetic-tiny", "--models", "bpr", "--epochs", "2"]
    assert _driver(report, tmp_path).returncode == 0
    page = (tmp_path / "results" / "REPORT.md").read_text()
    assert "1 of the runs took over the finished training" in page and "`results/searches.md`" in page


def test_tune_runs_several_models_in_order(tmp_path: Path) -> None:
    res = _driver(["--tune", "bpr", "lightgcn", "--datasets", "synthetic-tiny", "--epochs", "1", "--quiet"], tmp_path)
    assert res.returncode == 0, res.stderr
    import json

    tuned = json.loads((tmp_path / "results" / "tuned.json").read_text())["synthetic-tiny"]
    assert set(tuned) == {"bpr", "lightgcn"}
    assert "search 1 / 2: bpr on synthetic-tiny" in res.stderr and "search 2 / 2: lightgcn" in res.stderr
    # --quiet drops the epoch lines, not the one line per grid point
    assert "epoch 1/" not in res.stderr
    assert res.stderr.count("search 1/") == 2 and "s elapsed)" in res.stderr


def test_tune_all_names_every_table2_model_once() -> None:
    from benchmark.study.definition import TABLE2_MODELS
    from benchmark.study.driver import Options, tuned_models

    opts = Options(tune=["mmil", "all", "bpr"])
    assert tuned_models(opts) == ["mmil"] + [m for m in TABLE2_MODELS if m != "mmil"]


def test_tune_plan_counts_points_and_trains_nothing(tmp_path: Path) -> None:
    from benchmark.registry import get_model

    res = _driver(["--tune", "bpr", "--plan", "--datasets", "synthetic-tiny"], tmp_path)
    assert res.returncode == 0, res.stderr
    n = len(list(itertools.product(*get_model("bpr").grid.values())))
    assert f"search bpr / synthetic-tiny: {n} points, 0 recorded, {n} to run" in res.stdout
    assert not (tmp_path / "results" / "runs").exists() or not any((tmp_path / "results" / "runs").glob("*.json.gz"))


def _curve(r, valid: list[float], stopped: bool = True):  # type: ignore[no-untyped-def]
    from dataclasses import replace

    best = int(np.argmax(valid)) + 1
    history = [{"epoch": i + 1, "valid_recall@20": v} for i, v in enumerate(valid)]
    return replace(r, history=history, best_epoch=best, epochs_run=len(valid), stopped_early=stopped)


def test_report_names_runs_stopped_on_an_early_peak_and_where_their_curve_went() -> None:
    from benchmark.study.report_page import _early_peaks

    dip = [0.10, 0.13, 0.12, 0.11] + [0.11 + 0.001 * i for i in range(19)]  # best at 2, back to .128
    decline = [0.2, 0.3, 0.25] + [0.15] * 20
    late = [0.01 * i for i in range(1, 11)] + [0.09] * 20  # best at epoch 10: converged, not listed
    runs = [
        _curve(record("d", "lightgcn", 1, 0.1, [0.1]), dip),
        _curve(record("d", "slmrec", 0, 0.1, [0.1]), decline),
        _curve(record("d", "bpr", 0, 0.1, [0.1]), late),
        _curve(record("d", "vbpr", 0, 0.1, [0.1]), dip, stopped=False),  # ran to its cap
    ]
    lines = _early_peaks(runs)
    assert lines == [
        "d / lightgcn seed 1: best epoch 2 of 23, validation Recall@20 0.1300 there, 0.1100 at its lowest "
        "after, 0.1280 when it stopped (climbing back); test Recall@20 0.1000",
        "d / slmrec seed 0: best epoch 2 of 23, validation Recall@20 0.3000 there, 0.1500 at its lowest "
        "after, 0.1500 when it stopped (still low); test Recall@20 0.1000",
    ]
