"""``results/REPORT.md``: one page embedding the tables and figures, with data, protocol, seeds,
hardware, time, and a provenance line per model, all taken from the run records."""

from __future__ import annotations

import inspect
from pathlib import Path

from ..atomic import write_text_atomic
from ..paths import ROOT, figures_dir, results_dir, tagged
from ..registry import get_model
from . import paper
from .definition import DATA_SOURCES, FOCUS, TABLE2_MODELS
from .experiments import table2_frame
from .record import Record
from .verdict import verdicts

PROTOCOL = """\
- One shared loop for every model: each training pair once per epoch in a fresh order, one
  uniform negative per positive (redrawn if a training item), Adam; validation Recall@20 after
  every epoch, early stop after `patience` validations without gain (MMIL: not before epoch 30),
  best state restored, the test split read once at the end.
- Full ranking over all items for every user with test items, training items masked (valid
  items too where a record says `mask_valid_at_test`); NDCG with IDCG over min(|relevant|, K).
- Hyper-parameters: each model's source defaults, or the configuration chosen on the validation
  split by `run_all.py --tune` (listed below when used). Cells are mean ± std over seeds."""


def _strip_title(md: str) -> str:
    return "\n".join(l for l in md.splitlines() if not l.startswith("# "))


def _code_versions(records: list[Record]) -> str:
    counts: dict[str, int] = {}
    for r in records:
        v = r.code_version
        counts[v] = counts.get(v, 0) + 1
    return ", ".join(f"`{v}` ({n} run{'s' if n > 1 else ''})" for v, n in sorted(counts.items(), key=lambda x: -x[1]))


def _provenance(records: list[Record]) -> list[str]:
    lines = ["| model | dataset | ours recall@20 | paper recall@20 | deviations |", "|---|---|---|---|---|"]
    seen: dict[tuple[str, str], list[float]] = {}
    for r in records:
        seen.setdefault((r.spec.model, r.spec.dataset), []).append(r.test["recall@20"])
    for (model, dataset), vals in sorted(seen.items()):
        try:
            src = Path(inspect.getsourcefile(get_model(model)) or "").resolve().relative_to(ROOT)
        except (ValueError, TypeError, KeyError):
            src = Path("?")
        theirs = paper.paper_value(paper.TABLE2, dataset, model, "recall@20")
        lines.append(
            f"| {model} | {dataset} | {sum(vals) / len(vals):.4f} | "
            f"{'n/a' if theirs is None else f'{theirs:.4f}'} | see the docstring of `{src}` |"
        )
    return lines


def _shortfalls(records: list[Record]) -> list[str]:
    """Every Table 2 cell (mean over seeds) more than BELOW_PAPER_DEFECT below its published value."""
    if not records:
        return []
    frame = table2_frame(records)
    metrics = ("recall@20", "precision@20", "ndcg@20")
    lines = (paper.shortfalls(r["dataset"], r["model"], {m: r[m] for m in metrics}) for _, r in frame.iterrows())
    return [line for line in lines if line]


# A best epoch this early, then `patience` epochs without gain, is a dip after a first peak rather
# than convergence: no model here converges in 5 epochs (the pruner's first rung).
EARLY_PEAK = 5


def _early_peaks(records: list[Record]) -> list[str]:
    """The runs that early stopping ended on a validation peak within the first EARLY_PEAK epochs,
    with where their curve went after it: a dip that the shared protocol (`patience` validations,
    no minimum epoch count but MMIL's) did not wait out looks the same to it as a decline."""
    out = []
    for r in sorted(records, key=lambda r: (r.spec.dataset, r.spec.model, r.variant, r.spec.seed)):
        if not (r.stopped_early and r.best_epoch <= EARLY_PEAK and r.history):
            continue
        curve = [h["valid_recall@20"] for h in r.history if "valid_recall@20" in h]
        if len(curve) <= r.best_epoch:
            continue
        peak, low = curve[r.best_epoch - 1], min(curve[r.best_epoch :])
        # back above half-way from its low to its peak: a dip it was climbing out of, not a decline
        trend = "climbing back" if curve[-1] >= low + (peak - low) / 2 else "still low"
        out.append(
            f"{r.spec.dataset} / {r.variant} seed {r.spec.seed}: best epoch {r.best_epoch} of {r.epochs_run}, "
            f"validation Recall@20 {peak:.4f} there, {low:.4f} at its lowest after, {curve[-1]:.4f} when it "
            f"stopped ({trend}); test Recall@20 {r.test.get('recall@20', float('nan')):.4f}"
        )
    return out


def _commands_of(report: str) -> list[str]:
    """The indented command lines of a report's "## Commands" section."""
    lines = report.splitlines()
    start = lines.index("## Commands") + 1 if "## Commands" in lines else len(lines)
    out = []
    for line in lines[start:]:
        if line.startswith("## "):
            break
        if line.startswith("    "):
            out.append(line.strip())
    return out


def _other_reports(res: Path) -> list[str]:
    """Links to the tagged reports (real data, other protocols) with the commands behind them, so
    the default report names every committed artefact without embedding another protocol's."""
    others = sorted(res.glob("REPORT-*.md"))
    if not others:
        return []
    out = [
        "## Other reports",
        "",
        "Rendered with `--tag`, from their own records (real data or another "
        "protocol); each names its data, seeds and time.",
        "",
    ]
    for p in others:
        out.append(f"- [{p.name}]({p.name}):")
        out += [f"  `{c}`" for c in _commands_of(p.read_text())]
    return out + [""]


def _relink(res: Path) -> None:
    """Rewrite the closing "Other reports" list of an existing ``results/REPORT.md``: a new tagged
    report must not leave the default one stale (``--report --check`` would then fail on it)."""
    page = res / "REPORT.md"
    if not page.is_file():
        return
    lines = page.read_text().splitlines()
    end = lines.index("## Other reports") if "## Other reports" in lines else len(lines)
    write_text_atomic(page, "\n".join(lines[:end] + _other_reports(res)) + "\n")


def write_report(
    records: list[Record], commands: list[str], rendered: list[str], tag: str = "", table2: list[Record] | None = None
) -> Path:
    """``results/REPORT.md`` (``REPORT-<tag>.md`` embedding the tagged tables and figures).

    Only the artefacts in ``rendered`` (names like "Table 3", rendered from ``records`` by this
    invocation) are embedded: a file left on disk by another protocol must not appear beside
    commands and records that did not make it. ``table2`` (its records) gives the opening verdict,
    one sentence per dataset."""
    res = results_dir()
    out = ["# MMIL benchmark report", ""]
    if sentences := verdicts(table2 or [], FOCUS, "MMIL"):
        out += [f"- {s}" for s in sentences] + [""]
    out += [
        "Every number and figure here was rendered from the run records committed in `results/runs/`; "
        "`python run_all.py --report --check` re-renders it from them, and the commands below retrain them.",
        "",
        "## Commands",
        "",
    ]
    out += [f"    {c}" for c in commands] + [""]
    datasets = {r.spec.dataset: r.dataset for r in records}
    out += [
        "## Data",
        "",
        "| dataset | kind | users | items | train / valid / test | modalities |",
        "|---|---|---|---|---|---|",
    ]
    for name, d in datasets.items():
        kind = (
            "synthetic (embedded generator)"
            if d.synthetic
            else ("real, interaction-only" if d.modalities == "none" else "real")
        )
        out.append(f"| {name} | {kind} | {d.users} | {d.items} | {d.train} / {d.valid} / {d.test} | {d.modalities} |")
    seeds = sorted({r.spec.seed for r in records})
    hardware = sorted(
        {
            f"{r.hardware} ({r.device}, {r.torch_threads} torch thread{'s' if r.torch_threads > 1 else ''})"
            for r in records
        }
    )
    total = sum(r.total_seconds for r in records)
    out += [""] + [
        f"{name}: {DATA_SOURCES[name]}" for name, d in datasets.items() if not d.synthetic and name in DATA_SOURCES
    ]
    out += [""] + [f"{name}: {note}" for name in datasets for note in paper.notes(name)]
    out += [
        "",
        "## Protocol",
        "",
        PROTOCOL,
        "",
        f"Seeds: {', '.join(map(str, seeds))}. Hardware: {'; '.join(hardware)}. "
        f"{len(records)} runs, {total / 60:.1f} min of training and evaluation in all" + ".",
        # no wall time of the rendering invocation: the page must re-render byte for byte
        "",
        "Code (the commit each run's process imported, `-dirty` with uncommitted code edits): "
        + _code_versions(records)
        + ".",
        "",
    ]
    continued = [r for r in records if r.continued_from]
    if continued:
        # their training ran in the search; its record names the commit that trained
        out += [
            f"{len(continued)} of the runs took over the finished training of their search's chosen point "
            "and only read the test split (each record's `continued_from` names the search run; a "
            "from-scratch run gives the same numbers).",
            "",
        ]
    tuned = {
        (r.spec.dataset, r.spec.model): {**r.spec.config, **r.spec.train}
        for r in records
        if (r.spec.config or r.spec.train) and r.spec.model != FOCUS
    }
    if tuned:
        out += [
            "Configurations chosen on validation (`--tune`; every point each search tried, and where it "
            "stopped, in `results/searches.md`):",
            "",
        ]
        out += [f"- {d} / {m}: `{c}`" for (d, m), c in sorted(tuned.items())] + [""]
    for stem, title in (("table2", "Table 2"), ("table3", "Table 3")):
        p = res / f"{tagged(stem, tag)}.md"
        if title in rendered and p.is_file():
            out += [f"## {title}", "", _strip_title(p.read_text()), ""]
            if title == "Table 2" and (
                missing := [m for m in TABLE2_MODELS if m not in {r.spec.model for r in records}]
            ):
                out += [f"Not run for this report: {', '.join(missing)} (see the README for why).", ""]
            if title == "Table 2" and (short := _shortfalls(table2 or [])):
                out += [f"More than {paper.BELOW_PAPER_DEFECT:.0%} below the published value:", ""]
                out += [f"- {line}" for line in short] + [""]
    if peaks := _early_peaks(records):
        out += [
            f"Runs that early stopping ended on a validation peak in their first {EARLY_PEAK} epochs, "
            "and their curve after it. One still low had passed its best; one climbing back was in a "
            "dip that the shared `patience` did not wait out (only MMIL has a minimum epoch count, 30), "
            "so a longer run might have found a later, higher peak:",
            "",
        ]
        out += [f"- {line}" for line in peaks] + [""]
    for fig in (2, 3, 4):
        png = figures_dir() / f"{tagged(f'figure{fig}', tag)}.png"
        if f"Figure {fig}" in rendered and png.is_file():
            out += [f"## Figure {fig}", "", f"![Figure {fig}](../figures/{png.name})", ""]
    out += [
        "## Provenance",
        "",
        "The published numbers (the MMIL paper's Tables 1-3, and the published references on the "
        "TikTok split) are in `benchmark/study/paper.py` with their sources, misprints kept as printed "
        "and flagged ⚠; `n/a` means no published value for that cell (synthetic data has none).",
        "",
    ]
    out += _provenance([r for r in records if r.spec.model != FOCUS or not r.spec.config])
    if not tag:
        out += _other_reports(res)
    path = res / f"{tagged('REPORT', tag)}.md"
    write_text_atomic(path, "\n".join(out) + "\n")
    if tag:
        _relink(res)
    return path
