"""Atomic file output: write to a temporary file in the target folder, rename onto the target.

A reader never sees a half-written file, and an interrupted write leaves the old file (if any)
untouched. The temporary file is removed on failure. Every file the package writes in one piece goes
through :func:`atomic_path`; ``fsync=True`` where a power cut must not leave an empty file behind the
rename (training checkpoints).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tamvt.errors import InputError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(
    path: str | Path, *, make_parents: bool = True, fsync: bool = False, suffix: str = ""
) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it becomes ``path`` (usual file mode).

    ``make_parents=False``: a missing folder is an :class:`~tamvt.errors.InputError` naming it.
    ``suffix`` ends the temporary name (``.mp4``: for writers that pick the format from the name).

    ``fsync``: flush the written file to disk before the rename (the data is durable once ``path``
    names it); without it the rename alone is atomic but may reach the disk before the data.
    """
    path = Path(path)
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.parent.is_dir():
        raise InputError(path.parent, "output folder does not exist")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{suffix}")
    os.close(fd)
    try:
        yield Path(tmp)
        if fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str, *, make_parents: bool = True) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path, make_parents=make_parents) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="")
