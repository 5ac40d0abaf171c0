"""Exports of a session, each written to a temporary file renamed at the end (never a half-written file):

* ``masks.zip``: one palette PNG per frame (``<video>/<frame>.png``, DAVIS palette, ids as painted);
* ``objects.zip``: per-object binary PNGs (``<id>/<frame>.png``, 0 / 255);
* ``overlay.mp4``: the frames with the masks blended in and outlined (a variable-frame-rate video keeps
  each frame's time, so the overlay lasts as long as the source).

Frames with no mask are exported as background (PNGs) or as the plain frame (video).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from tamvt.app.sessions import AppSession
from tamvt.atomic import atomic_path
from tamvt.data.palette import DAVIS_PALETTE

KINDS = {"masks": "masks.zip", "objects": "objects.zip", "overlay": "overlay.mp4"}


def frame_masks(session: AppSession) -> list[np.ndarray]:
    """Every frame's index mask ``(H, W)`` uint8 (zeros where the frame has none)."""
    empty = np.zeros(session.video.size, dtype=np.uint8)
    return [m if m is not None else empty for m, _ in (session.mask(k) for k in range(session.num_frames))]


def _png(mask: np.ndarray, palette: bytes | None) -> bytes:
    img = Image.fromarray(np.ascontiguousarray(mask, dtype=np.uint8))  # (H, W) uint8: mode "L"
    if palette is not None:
        img = img.convert("P")  # ids unchanged: "L" -> "P" keeps the values
        img.putpalette(palette)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def free_name(folder: Path, name: str) -> str:
    """``name``, or ``stem-2.ext``, ``stem-3.ext`` ... : the first not taken in ``folder`` (an export never
    overwrites an earlier one). A name is taken by an empty placeholder file, which the export replaces."""
    folder.mkdir(parents=True, exist_ok=True)
    stem, dot, ext = name.rpartition(".")
    for n in range(1, 100_000):
        candidate = name if n == 1 else f"{stem}-{n}{dot}{ext}"
        try:
            (folder / candidate).touch(exist_ok=False)  # claimed at once: two exports at once get two names
        except FileExistsError:
            continue
        return candidate
    raise OSError(f"{folder}: no free name for {name}")


def write_export(session: AppSession, kind: str, path: Path) -> Path:
    """Write export ``kind`` (a key of :data:`KINDS`) of ``session`` to ``path`` atomically."""
    masks = frame_masks(session)
    names = session.video.names
    stem = Path(session.video.name).stem or "video"
    if kind == "overlay":
        from tamvt.data.video import VideoWriter
        from tamvt.inference.overlay import overlay

        video = session.video
        times = video.times  # a variable frame rate: each frame at its time, the last until the source ends
        with VideoWriter(path, fps=video.fps, timed=times is not None) as writer:  # temp file renamed at the end
            for k, (frame, mask) in enumerate(zip(video.frames, masks, strict=True)):
                if times is None:
                    writer.write(overlay(frame, mask, DAVIS_PALETTE))
                else:
                    end = times[k + 1] if k + 1 < len(times) else (video.duration or times[k] + 1 / video.fps)
                    writer.write(overlay(frame, mask, DAVIS_PALETTE), time=times[k], duration=end - times[k])
        return path
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        if kind == "masks":
            for k, mask in enumerate(masks):
                zf.writestr(f"{stem}/{names[k]}.png", _png(mask, DAVIS_PALETTE))
        elif kind == "objects":
            ids = sorted({int(v) for m in masks for v in np.unique(m) if v})
            for obj in ids:
                for k, mask in enumerate(masks):
                    zf.writestr(f"{obj}/{names[k]}.png", _png((mask == obj).astype(np.uint8) * 255, None))
        else:
            raise ValueError(f"unknown export kind {kind!r}")
    return path
