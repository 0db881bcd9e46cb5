"""run_all.py end to end on the tiny preset: tables written, finished runs skipped, an
interrupted run leaves no record, bad input gives a one-line error."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pandas as pd

from benchmark.study.spec import RunSpec
from benchmark.study.store import RunStore, read_record

from ..conftest import driver_argv, driver_env


def run(args: list[str], home: Path, **kw) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    return subprocess.run(driver_argv(*args), capture_output=True, text=True, env=driver_env(home), timeout=600, **kw)


def test_table2_end_to_end_and_skip(tmp_path: Path) -> None:
    args = [
        "--table",
        "2",
        "--datasets",
        "synthetic-tiny",
        "--models",
        "bpr",
        "lightgcn",
        "--seeds",
        "0",
        "1",
        "--epochs",
        "3",
        "--quiet",
    ]
    first = run(args, tmp_path)
    assert first.returncode == 0, first.stderr
    df = pd.read_csv(tmp_path / "results" / "table2.csv")
    assert set(df.model) == {"bpr", "lightgcn"}
    for col in ("dataset", "n_seeds", "recall@20", "precision@20", "ndcg@20", "recall@20_std"):
        assert col in df.columns
    assert (df.n_seeds == 2).all()
    assert len(list((tmp_path / "results" / "runs").glob("*.json.gz"))) == 4
    second = run(args, tmp_path)
    assert second.returncode == 0
    assert "4 of 4 runs already recorded" in second.stderr
    assert "runs 1/" not in second.stderr
    assert pd.read_csv(tmp_path / "results" / "table2.csv").equals(df)


def test_interrupted_run_leaves_no_record(tmp_path: Path) -> None:
    # MMIL trains at least 30 epochs (seconds): LightGCN on the tiny preset could early-stop and
    # exit before the signal arrives
    args = driver_argv("--table", "2", "--datasets", "synthetic-tiny", "--models", "mmil", "--epochs", "100000")
    p = subprocess.Popen(
        args,
        stderr=subprocess.PIPE,
        text=True,
        env=driver_env(tmp_path),
        # a shell's background job ignores SIGINT and its children inherit that
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert p.stderr is not None
    deadline = time.time() + 120
    while time.time() < deadline:
        line = p.stderr.readline()
        if "epoch 3/" in line:
            break
    p.send_signal(signal.SIGINT)
    p.wait(timeout=60)
    assert p.returncode == 130
    runs = tmp_path / "results" / "runs"
    assert not runs.exists() or not any(runs.iterdir())


def test_bad_input_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "data" / "broken"
    bad.mkdir(parents=True)
    (bad / "broken.inter").write_text("userID\titemID\tx_label\n0\tzero\t0\n")
    res = run(["--table", "2", "--data-root", str(tmp_path / "data"), "--datasets", "broken"], tmp_path)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    err = [l for l in res.stderr.splitlines() if l.startswith("error:")]
    assert len(err) == 1 and "broken.inter, row 2" in err[0] and "not an integer" in err[0]
    res = run(["--table", "2", "--datasets", "synthetic-tiny", "--models", "nope"], tmp_path)
    assert res.returncode == 2 and "unknown model 'nope'" in res.stderr


def test_tag_keeps_the_default_artefacts(tmp_path: Path) -> None:
    """--tag writes table2-TAG.* and REPORT-TAG.md and leaves table2.* as they were."""
    base = ["--table", "2", "--datasets", "synthetic-tiny", "--models", "bpr", "--epochs", "2", "--quiet"]
    before = run([*base, "--plan"], tmp_path)
    assert "Table 2 / synthetic-tiny: 1 runs, 0 recorded or shared, 1 to run" in before.stdout
    assert "1 run(s) of a dataset and model with no record" in before.stdout
    assert not (tmp_path / "results" / "runs").exists() or not any((tmp_path / "results" / "runs").iterdir())
    ckpt = RunStore(tmp_path / "results" / "runs").checkpoint_path(RunSpec("synthetic-tiny", "bpr", 0, epochs=2))
    ckpt.parent.mkdir(parents=True)
    ckpt.touch()  # a run in progress
    assert "1 to run (1 from a checkpoint)" in run([*base, "--plan"], tmp_path).stdout
    ckpt.unlink()
    assert run(base, tmp_path).returncode == 0
    after = run([*base, "--plan"], tmp_path).stdout
    assert "1 recorded or shared, 0 to run" in after and "about 0.0 h" in after
    seconds = RunStore(tmp_path / "results" / "runs").get(RunSpec("synthetic-tiny", "bpr", 0, epochs=2)).total_seconds
    assert f"whole campaign: {seconds / 60:.0f} min recorded + about 0 min to run" in after
    default = (tmp_path / "results" / "table2.md").read_text()
    tagged = run(
        [
            "--report",
            "--table",
            "2",
            "--datasets",
            "synthetic-tiny",
            "--models",
            "bpr",
            "--epochs",
            "2",
            "--tag",
            "other",
        ],
        tmp_path,
    )
    assert tagged.returncode == 0, tagged.stderr
    assert (tmp_path / "results" / "table2.md").read_text() == default
    assert (tmp_path / "results" / "table2-other.csv").is_file()
    report = (tmp_path / "results" / "REPORT-other.md").read_text()
    assert "--tag other" in report and "Table 2" in report
    assert "Not run for this report: vbpr, lightgcn, mmgcn" in report
    # a table left on disk by another protocol is not embedded in a report whose records lack it
    (tmp_path / "results" / "table3.md").write_text("# Table 3\n\nSTRAY ROW\n")
    untagged = run(
        ["--report", "--table", "2", "--datasets", "synthetic-tiny", "--models", "bpr", "--epochs", "2"], tmp_path
    )
    assert untagged.returncode == 0, untagged.stderr
    page = (tmp_path / "results" / "REPORT.md").read_text()
    assert "## Table 2" in page and "STRAY" not in page and "## Table 3" not in page
    # the default report links the tagged one with the command that made it, without embedding it
    other = page[page.index("## Other reports") :]
    assert "- [REPORT-other.md](REPORT-other.md):" in other
    assert (
        "`python run_all.py --table 2 --datasets synthetic-tiny --models bpr --seeds 0 --epochs 2 --tag other`" in other
    )
    assert "Table 3" not in untagged.stderr and "Figure" not in untagged.stderr and "wrote" in untagged.stderr
    # a tagged report written later is linked from the default one at once, the rest left as it was
    third = run([*base[:-1], "--report", "--tag", "third"], tmp_path)
    assert third.returncode == 0, third.stderr
    relinked = (tmp_path / "results" / "REPORT.md").read_text()
    assert relinked.startswith(page[: page.index("## Other reports")])
    assert "- [REPORT-other.md](REPORT-other.md):" in relinked and "- [REPORT-third.md](REPORT-third.md):" in relinked
    # --report without an artefact flag asks for every artefact: Table 3's runs are missing, so
    # it fails with one line and overwrites nothing
    before = {p: p.read_bytes() for p in (tmp_path / "results").glob("*.*")}
    every = run(["--report", "--datasets", "synthetic-tiny", "--models", "bpr", "--epochs", "2"], tmp_path)
    assert every.returncode == 2
    err = [line for line in every.stderr.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and "Table 3: 15 of 15 runs have no record" in err[0] and "nothing was written" in err[0]
    assert {p: p.read_bytes() for p in (tmp_path / "results").glob("*.*")} == before
    bad = run(["--report", "--tag", "../x"], tmp_path)
    assert bad.returncode == 2 and "--tag" in bad.stderr


def test_report_check_and_verify(tmp_path: Path) -> None:
    """--report --check re-renders the artefacts from the records and names what differs or is
    missing; --verify retrains a recorded run and finds the same numbers."""
    base = ["--table", "2", "--datasets", "synthetic-tiny", "--models", "bpr", "lightgcn", "--epochs", "2", "--quiet"]
    assert run(base, tmp_path).returncode == 0
    assert run(["--report", *base[:-1]], tmp_path).returncode == 0  # REPORT.md too
    # an invocation that wrote no REPORT.md: re-rendered with --report it writes one, which must
    # not stand in for the Table 2 invocation's
    ablation = ["--ablation", "--datasets", "synthetic-tiny", "--seeds", "0", "--epochs", "2", "--quiet"]
    assert run(ablation, tmp_path).returncode == 0
    ok = run(["--report", "--check"], tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "all reproduced" in ok.stderr
    verified = run(["--verify", "1"], tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "reproduced exactly" in verified.stdout and "1 of 1 runs reproduced exactly" in verified.stdout
    # --models (and --datasets) narrow what is drawn: only LightGCN's one run here
    narrowed = run(["--verify", "5", "--models", "lightgcn", "--quiet"], tmp_path)
    assert narrowed.returncode == 0 and "1 of 1 runs reproduced exactly" in narrowed.stdout
    assert "lightgcn" in narrowed.stdout and "/bpr" not in narrowed.stdout
    table = tmp_path / "results" / "table2.md"
    table.write_text(table.read_text().replace("bpr", "bpr?"))
    stray = tmp_path / "results" / "table9.md"
    stray.write_text("no invocation renders this\n")
    bad = run(["--report", "--check"], tmp_path)
    assert bad.returncode == 1
    assert "results/table2.md: differs when re-rendered from the committed records" in bad.stderr
    assert "results/table9.md: committed but no invocation" in bad.stderr
    assert "results/table2.csv" not in bad.stderr
    record = sorted((tmp_path / "results" / "runs").glob("*.json.gz"))[0]
    record.unlink()
    gone = run(["--report", "--check"], tmp_path)
    assert gone.returncode == 1 and f"{record.name}: missing, and artefacts were rendered from it" in gone.stderr


def test_verify_retrains_search_points_as_the_search_ran_them(tmp_path: Path) -> None:
    """A pruned point stops where its pruner stopped it, and no point reads the test split."""
    tune = ["--tune", "bpr", "--grid", "lr=1e-2,1e-6", "--datasets", "synthetic-tiny", "--epochs", "8", "--quiet"]
    assert run(tune, tmp_path).returncode == 0
    records = [read_record(p) for p in (tmp_path / "results" / "runs").glob("*.json.gz")]
    assert any(r.pruned for r in records) and any(not r.pruned for r in records)
    verified = run(["--verify", str(len(records)), "--verify-budget", "60", "--quiet"], tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"{len(records)} of {len(records)} runs reproduced exactly" in verified.stdout


def test_verify_names_a_record_made_with_other_cpu_kernels(tmp_path: Path) -> None:
    """A record of another CPU kernel set (AVX2 against AVX-512) may differ in the last bits: verify
    says so and does not fail; the same difference on this machine's kernels fails."""
    from dataclasses import replace

    import torch

    base = ["--table", "2", "--datasets", "synthetic-tiny", "--models", "bpr", "--epochs", "2", "--quiet"]
    assert run(base, tmp_path).returncode == 0
    path = next((tmp_path / "results" / "runs").glob("*.json.gz"))
    record = read_record(path)
    assert f"CPU kernels {torch.backends.cpu.get_cpu_capability()}" in record.hardware
    store = RunStore(tmp_path / "results" / "runs")
    off = {**record.test, "recall@20": record.test["recall@20"] + 0.5}
    store.put(replace(record, test=off, hardware="x86_64, 2 cpus, CPU kernels OTHER, torch 2"))
    elsewhere = run(["--verify", "1", "--quiet"], tmp_path)
    assert elsewhere.returncode == 0, elsewhere.stdout + elsewhere.stderr
    assert "recorded with CPU kernels OTHER" in elsewhere.stdout and "1 differ" in elsewhere.stdout
    store.put(replace(record, test=off))
    here = run(["--verify", "1", "--quiet"], tmp_path)
    assert here.returncode == 1 and "DIFFERS in test" in here.stdout and "CPU kernels" not in here.stdout


def test_the_record_index_skips_records_made_under_other_defaults(tmp_path: Path) -> None:
    from dataclasses import replace

    import pytest

    from benchmark.study.driver import RecordIndex
    from tests.study.records import fake_record

    old = fake_record("synthetic-tiny", "bpr", 0, 0.1, [0.1])  # its key is no key today's code gives
    current = replace(old, key=old.spec.key(old.dataset.checksum))
    store = RunStore(tmp_path)
    store.put(old)
    store.put(current)
    assert {i: r.key for i, r in RecordIndex(store).by_spec.items()} == {current.spec.identity(): current.key}
    # two current records of one spec (the dataset changed under it): which is right is not known
    other = replace(current, dataset=replace(current.dataset, checksum="y"), key=current.spec.key("y"))
    store.put(other)
    with pytest.raises(ValueError, match="two records for"):
        RecordIndex(store)


def test_the_record_index_finds_a_spec_that_names_a_default_by_its_key(tmp_path: Path) -> None:
    """Figure 2's mu = 0.01 point is MMIL's default: one run, recorded under the plain spec."""
    from dataclasses import replace

    from benchmark.study.driver import RecordIndex
    from mmil.config import MMILConfig
    from tests.study.records import fake_record

    plain = fake_record("synthetic-tiny", "mmil", 0, 0.1, [0.1])
    plain = replace(plain, key=plain.spec.key(plain.dataset.checksum))
    store = RunStore(tmp_path)
    store.put(plain)
    index = RecordIndex(store)
    named = replace(plain.spec, config={"mu": MMILConfig().mu})
    assert named.identity() != plain.spec.identity()
    found = index.find(named)
    assert found is not None and found.key == plain.key
    assert index.find(replace(plain.spec, config={"mu": MMILConfig().mu * 10})) is None
