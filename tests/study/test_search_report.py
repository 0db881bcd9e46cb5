from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from benchmark.study.search_report import markdown, search_rows
from benchmark.study.spec import RunSpec

from .test_driver import run


def _trial(lr: float, reg: float, epochs: int, pruned: bool, valid: float) -> dict:  # type: ignore[type-arg]
    return {
        "point": {"lr": lr, "reg_weight": reg},
        "key": f"k{lr}{reg}",
        "epochs": epochs,
        "pruned": pruned,
        "valid": valid,
    }


def test_search_rows_count_stops_caps_and_edges() -> None:
    cap = RunSpec("synthetic-tiny", "bpr", 0).resolved()[1].max_epochs
    trials = [
        _trial(1e-2, 0.0, 5, True, 0.10),
        _trial(1e-2, 1e-3, 5, True, 0.11),
        _trial(1e-3, 0.0, 15, True, 0.20),
        _trial(1e-3, 1e-3, cap, False, 0.30),  # ran to its cap
        _trial(1e-4, 0.0, 40, False, 0.35),  # chosen: the smallest lr of three, stopped early
        _trial(1e-4, 1e-3, 5, True, 0.05),
    ]
    entry = {
        "config": {"lr": 1e-4, "reg_weight": 0.0},
        "valid_recall@20": 0.35,
        "search": "sha(min=5,eta=3,recall@20):abc",
        "grid_points": 6,
        "pruned": 4,
        "trials": trials,
    }
    other = {**entry, "config": trials[3]["point"], "trials": trials[3:4]}
    tuned = {"synthetic-tiny": {"bpr": entry, "lightgcn": other}, "elsewhere": {"bpr": other}}
    # each point's record: a validation curve flat at its value until it stopped
    curves = {
        t["key"]: [{"epoch": e, "valid_recall@20": t["valid"]} for e in range(1, t["epochs"] + 1)] for t in trials
    }
    store = SimpleNamespace(by_key=lambda key: SimpleNamespace(history=curves[key]))

    df = search_rows(tuned, ["synthetic-tiny", "absent"], ["bpr"], store)  # type: ignore[arg-type]
    assert len(df) == 1  # other datasets and models are left out
    r = df.iloc[0]
    assert (r.first_rung, r.points, r.pruned, r.pruned_at, r.finished, r.at_cap) == (5, 6, 4, "5: 3, 15: 1", 2, 1)
    assert (r.chosen, r.valid, r.epochs) == ("lr=0.0001, reg_weight=0", 0.35, 40)
    # nearest call: the point stopped at 15 (.20) against the best other at epoch 15 (.35)
    assert r.closest == pytest.approx((0.35 - 0.20) / 0.35)
    # lr took three values and the choice is the smallest; reg_weight took two: never flagged
    assert r.edge == "lr=0.0001 (smallest)"
    assert (
        "| bpr | 5 | 6 | 4 (5: 3, 15: 1) | 42.9% | 2 (1) | lr=0.0001, reg_weight=0 | 0.3500 | 40 | lr=0.0001 (smallest) |"
        in markdown(df, "")
    )

    assert list(search_rows(tuned, ["synthetic-tiny"], ["lightgcn", "bpr"], store).model) == ["lightgcn", "bpr"]  # type: ignore[arg-type]


def test_the_searches_page_renders_from_tuned_json_and_the_check_guards_it(tmp_path: Path) -> None:
    tune = ["--tune", "bpr", "--datasets", "synthetic-tiny", "--epochs", "3", "--quiet"]
    assert run(tune, tmp_path).returncode == 0
    page = tmp_path / "results" / "searches.md"
    runs = sorted((tmp_path / "results" / "runs").glob("*.json.gz"))
    tuned = json.loads((tmp_path / "results" / "tuned.json").read_text())
    trials = tuned["synthetic-tiny"]["bpr"]["trials"]
    assert {t["key"] for t in trials} <= {p.name.removesuffix(".json.gz") for p in runs}
    assert "| bpr | 5 | 12 |" in page.read_text()
    assert run(["--report", "--check"], tmp_path).returncode == 0
    # a later search of another model adds its row; the page keeps every search of tuned.json
    other = ["--tune", "lightgcn", "--grid", "lr=1e-3,5e-3", "--datasets", "synthetic-tiny", "--epochs", "2"]
    assert run([*other, "--quiet"], tmp_path).returncode == 0
    text = page.read_text()
    assert "| bpr | 5 | 12 |" in text and "| lightgcn | 5 | 2 |" in text
    runs = sorted((tmp_path / "results" / "runs").glob("*.json.gz"))

    # --report renders from tuned.json and trains nothing (it used to run the searches)
    page.unlink()
    again = run(["--report", *tune], tmp_path)
    assert again.returncode == 0 and "tuning bpr" not in again.stderr and page.is_file()
    assert sorted((tmp_path / "results" / "runs").glob("*.json.gz")) == runs

    # a search landed in tuned.json without its page re-rendered fails the check
    tuned["synthetic-tiny"]["bpr"]["valid_recall@20"] = 0.99
    (tmp_path / "results" / "tuned.json").write_text(json.dumps(tuned))
    check = run(["--report", "--check"], tmp_path)
    assert check.returncode == 1 and "results/searches.md: differs" in check.stderr
    # and so does a point whose record is gone
    runs[0].unlink()
    assert "missing, and artefacts were rendered from it" in run(["--report", "--check"], tmp_path).stderr
