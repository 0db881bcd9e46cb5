"""Table 1 (dataset statistics) for any dataset the suite can load, and the paper's rows to check
against.

The paper counts a dataset's interactions as train + test (the valid split is left out), which is
what `Dataset.summary` computes; density is that count over users x items.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from .dataset import Dataset
from .registry import load_dataset

# The paper's Table 1 (users, items, train + test interactions), as quoted in the issue that asked
# for this table and in ../shared/data/README.md; the three shared splits reproduce it exactly.
PAPER_TABLE1: dict[str, dict[str, int]] = {
    "amazon-baby": {"users": 19445, "items": 7050, "interactions": 139110},
    "amazon-sports": {"users": 35598, "items": 18357, "interactions": 256308},
    "amazon-clothing": {"users": 39387, "items": 23033, "interactions": 237488},
}

COLUMNS = ["dataset", "users", "items", "interactions", "density", "train", "valid", "test", "modalities", "synthetic"]


def paper_row(name: str) -> dict[str, int] | None:
    """The paper's row for a dataset name (``amazon-baby``, or a prepared folder ``baby``)."""
    key = name if name.startswith("amazon-") else f"amazon-{name.lower()}"
    return PAPER_TABLE1.get(key)


def resolve(name: str, data_root: Path | str | None) -> tuple[str, Path | None]:
    """A name under the data root, or a path to a dataset folder (its parent becomes the root)."""
    root = None if data_root is None else Path(data_root)
    if root is not None and (root / name).is_dir():
        return name, root
    p = Path(name)
    if p.is_dir():
        return p.resolve().name, p.resolve().parent
    return name, root


def table1(names: Iterable[str], data_root: Path | str | None) -> pd.DataFrame:
    """One row per dataset: users, items, interactions (train + test), density, the split sizes,
    modalities, the dataset's checksum (as run records name it); plus the paper's users / items /
    interactions where the paper has the dataset."""
    rows = []
    for name in names:
        n, root = resolve(name, data_root)
        ds = load_dataset(n, root)
        s = ds.summary()
        row = {c: s[c] for c in COLUMNS}
        row["dataset"] = name
        row["checksum"] = ds.checksum
        paper = paper_row(n)
        for c in ("users", "items", "interactions"):
            row[f"paper_{c}"] = paper[c] if paper else pd.NA
        row["matches_paper"] = all(row[c] == paper[c] for c in ("users", "items", "interactions")) if paper else pd.NA
        rows.append(row)
    return pd.DataFrame(rows)


def format_table1(df: pd.DataFrame) -> str:
    """Markdown: the paper's layout (thousands separators), then whether each row matches it."""
    lines = [
        "| dataset | users | items | interactions | density | train / valid / test | modalities | paper (users / items / interactions) |",
        "|---|---:|---:|---:|---:|---|---|---|",
    ]
    for _, r in df.iterrows():
        name = r["dataset"] + (" (synthetic)" if r["synthetic"] else "")
        if pd.isna(r["paper_users"]):
            paper = "n/a"
        else:
            paper = f"{r['paper_users']:,} / {r['paper_items']:,} / {r['paper_interactions']:,} " + (
                "(matches)" if r["matches_paper"] else "(DIFFERS)"
            )
        lines.append(
            f"| {name} | {r['users']:,} | {r['items']:,} | {r['interactions']:,} | "
            f"{r['density']:.5f} | {r['train']:,} / {r['valid']:,} / {r['test']:,} | "
            f"{r['modalities']} | {paper} |"
        )
    return "\n".join(lines)


def split_stats(ds: Dataset) -> dict[str, object]:
    """The counts written to a prepared dataset's ``stats.json``."""
    s = ds.summary()
    return {
        "users": ds.n_users,
        "items": ds.n_items,
        "interactions": {
            "train": s["train"],
            "valid": s["valid"],
            "test": s["test"],
            "all": int(s["train"] + s["valid"] + s["test"]),
            "train+test": s["interactions"],
        },
        "density": s["density"],
        "users_per_split": {
            k: int((m.getnnz(axis=1) > 0).sum())
            for k, m in (("train", ds.train), ("valid", ds.valid), ("test", ds.test))
        },
        "items_in_train": int((ds.item_degree > 0).sum()),
    }
