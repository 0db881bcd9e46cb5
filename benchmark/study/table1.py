"""Table 1 (dataset statistics) as files: ``results/table1.{md,csv}``.

Rendered from the datasets themselves, not from run records: the paper's users / items /
interactions beside ours where the paper has the dataset, then one line per real dataset saying
where it comes from, which modalities it carries and its terms of use
(`definition.DATA_SOURCES`), and each dataset's checksum, so a reader can tell whether the runs of
a table saw the same data (a record names the checksum of the dataset it trained on).
"""

from __future__ import annotations

from pathlib import Path

from ..atomic import write_text_atomic
from ..data.stats import format_table1, table1
from ..paths import results_dir, tagged
from .definition import DATA_SOURCES


def render_table1(datasets: list[str], data_root: Path | None, tag: str = "") -> list[Path]:
    """Write Table 1 of ``datasets`` (markdown with the sources, and csv); returns the paths."""
    df = table1(datasets, data_root)
    lines = ["# Table 1: dataset statistics", "", format_table1(df), "", "## Where the data comes from", ""]
    for d, checksum in zip(datasets, df["checksum"]):
        source = DATA_SOURCES.get(d, "synthetic: the suite's own generator" if d.startswith("synthetic") else "")
        lines.append(f"- `{d}` (checksum `{checksum}`): {source or 'no source line in benchmark/study/definition.py'}")
    md = results_dir() / f"{tagged('table1', tag)}.md"
    csv = md.with_suffix(".csv")
    write_text_atomic(md, "\n".join(lines) + "\n")
    write_text_atomic(csv, df.to_csv(index=False))
    return [md, csv]


def unavailable(datasets: list[str], data_root: Path | None, committed_csv: Path) -> str | None:
    """Why Table 1 cannot be re-rendered here as committed (None when it can): a dataset does not
    load (its data folder is absent), or loads with another checksum than the committed table
    names (MovieLens-100K before its text features are prepared, say). `--report --check` then
    skips it."""
    import pandas as pd

    try:
        here = table1(datasets, data_root).set_index("dataset")["checksum"]
    except Exception as e:  # a missing folder or file: the data is not here
        return f"its data does not load here ({type(e).__name__}: {e})"
    named = pd.read_csv(committed_csv).set_index("dataset")["checksum"]
    for d in datasets:
        if here[d] != named.get(d):
            return f"{d} loads with checksum {here[d]} here, {named.get(d)} in the committed table"
    return None
