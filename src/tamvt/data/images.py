"""Image files: frame and mask folders listed in natural order, images read lazily (one at a time).

Bad input raises :class:`~tamvt.errors.InputError` naming the file and the problem.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from tamvt.errors import InputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
# Errors PIL raises for truncated / corrupt / unknown image files.
PIL_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError)


def natural_key(name: str) -> tuple:
    """Sort key that orders ``frame2`` before ``frame10``.

    ``re.split`` with a capture group alternates text and digit runs, so position ``i`` always
    holds the same type in every key and tuples compare without type errors.
    """
    parts = re.split(r"(\d+)", name)
    return tuple(int(p) if i % 2 else p.lower() for i, p in enumerate(parts)) + (name,)


def _list_files(folder: Path, suffixes: tuple[str, ...], what: str) -> list[Path]:
    if not folder.is_dir():
        raise InputError(folder, f"{what} folder not found")
    # Hidden files (e.g. macOS "._00000.jpg" resource forks) are never frames.
    names = [
        e.name
        for e in os.scandir(folder)
        if e.is_file() and not e.name.startswith(".") and e.name.lower().endswith(suffixes)
    ]
    return [folder / n for n in sorted(names, key=natural_key)]


def list_frame_files(folder: str | Path) -> list[Path]:
    """Image files (jpg / jpeg / png) of ``folder`` in natural order; ``[]`` when there are none."""
    return _list_files(Path(folder), IMAGE_SUFFIXES, "frame")


def list_mask_files(folder: str | Path) -> list[Path]:
    """PNG files of ``folder`` in natural order; ``[]`` when there are none."""
    return _list_files(Path(folder), (".png",), "annotation")


@contextlib.contextmanager
def _open_frame(path: Path) -> Iterator[Image.Image]:
    """The image file at ``path``, opened lazily; a missing or unreadable file is an :class:`InputError`."""
    if not path.is_file():
        raise InputError(path, "frame file not found")
    try:
        with Image.open(path) as img:
            yield img
    except PIL_ERRORS as err:
        raise InputError(path, f"cannot read image ({err.__class__.__name__}: {err})") from None


def read_image_size(path: str | Path) -> tuple[int, int]:
    """``(H, W)`` of an image file from its header only (no pixel decoding)."""
    with _open_frame(Path(path)) as img:
        w, h = img.size
    return h, w


def read_image(path: str | Path, expected_size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode one image file to ``(H, W, 3)`` uint8 RGB (gray / RGBA / palette are converted).

    ``expected_size`` ``(H, W)``: raise if the file has another size (checked before decoding).
    """
    path = Path(path)
    with _open_frame(path) as img:
        w, h = img.size
        if expected_size is not None and (h, w) != tuple(expected_size):
            eh, ew = expected_size
            raise InputError(path, f"frame size {w}x{h} != expected {ew}x{eh}")
        img.load()
        rgb = img.convert("RGB")
    return np.asarray(rgb, dtype=np.uint8)


def iter_images(
    paths: Sequence[str | Path], start: int = 0, expected_size: tuple[int, int] | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(index, frame (H, W, 3) uint8 RGB)`` for ``paths[start:]``, decoding one at a time."""
    for i in range(max(start, 0), len(paths)):
        yield i, read_image(paths[i], expected_size=expected_size)
