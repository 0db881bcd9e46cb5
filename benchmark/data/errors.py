"""The one error type every reader raises on bad input."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Bad input data: the message names the file, the row (when there is one) and the problem."""

    def __init__(self, path: str | Path, problem: str, row: int | None = None) -> None:
        where = f"{path}" if row is None else f"{path}, row {row}"
        super().__init__(f"{where}: {problem}")
        self.path = str(path)
        self.row = row
        self.problem = problem
