"""Index-PNG masks: read single-channel masks ('P' or 'L'), write palette PNGs; the colour of every object id.

Outputs keep the palette of the input mask; when the input had none, the DAVIS palette is used.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from tamvt.atomic import atomic_path
from tamvt.errors import InputError


def _davis_palette() -> bytes:
    """The DAVIS / PASCAL VOC colour map: 256 RGB triplets from the bits of the index."""
    pal = np.zeros((256, 3), dtype=np.uint8)
    for i in range(256):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal[i] = (r, g, b)
    return pal.tobytes()


DAVIS_PALETTE: bytes = _davis_palette()


def palette_colors(palette: bytes | None) -> np.ndarray:
    """``(256, 3)`` uint8 colour of every id (DAVIS palette when ``palette`` is None; short ones padded)."""
    raw = (palette if palette is not None else DAVIS_PALETTE)[:768].ljust(768, b"\0")
    return np.frombuffer(raw, dtype=np.uint8).reshape(256, 3)


def read_index_png(path: str | Path, *, allow_16bit: bool = False) -> tuple[np.ndarray, bytes | None]:
    """Read a single-channel index mask.

    Returns ``(mask (H, W) uint8, palette bytes or None)``. RGB / RGBA masks and 16-bit masks are
    rejected with an :class:`InputError` naming the file: their ids are ambiguous. A JPEG (whatever its
    name) is rejected too: its compression changes the ids at object edges. Other lossless formats
    (BMP, GIF, TIFF) in mode 'P' or 'L' are read like a PNG.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "mask file not found")
    try:
        with Image.open(path) as img:
            img.load()
            mode, fmt = img.mode, img.format or "unknown"
            if fmt in ("JPEG", "MPO"):  # lossy: the ids at every object edge would be wrong
                raise InputError(
                    path,
                    f"mask is a JPEG file (mode {mode}){_despite_name(path, fmt)}: JPEG "
                    "compression changes the ids at object edges; save it as an index PNG "
                    "('P' or 'L')",
                )
            if mode == "P":
                arr = np.array(img, dtype=np.uint8)
                pal = img.getpalette()
                palette = bytes(pal[:768]).ljust(768, b"\0") if pal else None
            elif mode == "L" or mode == "1":
                arr = np.array(img, dtype=np.uint8)
                palette = None
            elif mode in ("I;16", "I;16B", "I;16L", "I") and allow_16bit:
                arr = np.array(img).astype(np.int64)
                if arr.max(initial=0) > 255:
                    raise InputError(path, f"mask has ids > 255 (max {arr.max()})")
                arr, palette = arr.astype(np.uint8), None
            elif mode in ("I;16", "I;16B", "I;16L", "I"):
                raise InputError(path, f"16-bit mask (mode {mode}); expected an 8-bit index PNG ('P' or 'L')")
            elif fmt == "PNG":
                raise InputError(path, f"mask is {mode}, not a single-channel index PNG ('P' or 'L')")
            else:
                raise InputError(
                    path,
                    f"mask is a {fmt} file in mode {mode}{_despite_name(path, fmt)}, not a "
                    "single-channel index PNG ('P' or 'L')",
                )
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise InputError(path, f"cannot read mask ({err.__class__.__name__}: {err})") from None
    return arr, palette


def _despite_name(path: Path, fmt: str) -> str:
    """`` despite its .png name`` when the file's name claims another format than its content."""
    suffix = path.suffix.lower()
    claimed = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}.get(suffix)
    return f" despite its {suffix} name" if claimed is not None and claimed != fmt else ""


def write_index_png(path: str | Path, mask: np.ndarray, palette: bytes | None = None) -> None:
    """Write ``mask (H, W)`` of ids 0..255 as a palette PNG, atomically (temp file + rename)."""
    path = Path(path)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    arr = np.ascontiguousarray(mask, dtype=np.uint8)
    img = Image.frombytes("P", (arr.shape[1], arr.shape[0]), arr.tobytes())
    img.putpalette(palette if palette is not None else DAVIS_PALETTE)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
