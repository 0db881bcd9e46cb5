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

    def __reduce__(self) -> tuple[type[DataError], tuple[str, str, int | None]]:
        # A run in a worker process sends its error back pickled; the default reduction would
        # call __init__ with the message alone and turn it into joblib's opaque BrokenProcessPool.
        return type(self), (self.path, self.problem, self.row)
