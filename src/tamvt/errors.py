"""Errors that the CLI reports as one line (no traceback) with a non-zero exit code."""

from __future__ import annotations

from pathlib import Path


class TamvtError(Exception):
    """A user-facing error: bad input, bad configuration, missing file.

    The CLI prints ``str(error)`` on one line and exits with status 2.
    """


class InputError(TamvtError):
    """A problem with one input file or folder: the message names the path and the problem."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")

    def __reduce__(self):  # so the error survives the trip back from a worker process
        return (type(self), (self.path, self.problem))


class SessionError(TamvtError, ValueError):
    """Bad input to the session API (mask size, empty mask, unknown / duplicate object id, frame order)."""
