"""The two layers stay apart: the library (benchmark/ outside benchmark/study/) imports neither the
study layer nor a model package, and no module imports the command line."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            mod = ".".join([*base, node.module] if node.module else base)
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names}
    return out


def test_the_library_imports_no_study_and_no_model() -> None:
    library = [p for p in (ROOT / "benchmark").rglob("*.py") if "study" not in p.relative_to(ROOT).parts]
    assert len(library) > 20
    for p in library:
        bad = {
            m
            for m in imported_modules(p)
            if m.split(".")[0] in ("mmil", "baselines", "run_all") or m.startswith("benchmark.study")
        }
        assert not bad, f"{p.relative_to(ROOT)} imports {sorted(bad)}"


def test_no_module_imports_the_command_line() -> None:
    for p in [*ROOT.glob("benchmark/**/*.py"), *ROOT.glob("baselines/*.py"), *ROOT.glob("mmil/*.py")]:
        assert "run_all" not in {m.split(".")[0] for m in imported_modules(p)}, p


def test_the_command_line_is_short() -> None:
    assert len((ROOT / "run_all.py").read_text().splitlines()) < 100


def test_the_resolver_sees_relative_imports() -> None:
    names = imported_modules(ROOT / "benchmark" / "study" / "driver.py")
    assert "benchmark.study.store" in names and "benchmark.paths" in names
