"""Videos for the app: names and paths checked, uploads checked by content, each video decoded once
into memory and kept in a cache bounded in bytes.

A decoded video is ``(T, H, W, 3)`` uint8 RGB in memory: the page's frames (JPEG, encoded on first
request and kept) and the engine's input both come from it, so a video is never decoded twice while
it is cached. Videos used by an open session are pinned; the least recently used unpinned ones are
dropped when the cache is over its size.
"""

from __future__ import annotations

import io
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from tamvt.app.errors import AppError
from tamvt.errors import InputError

_NAME = re.compile(r"^[\w][\w .()+,=@-]{0,199}$")


def check_name(name: str, what: str = "name") -> str:
    """``name`` if it is a plain file name (no folder part, no ``..``, no control characters), else a 400."""
    if not name or "/" in name or "\\" in name or ".." in name or not _NAME.match(name):
        raise AppError(
            400,
            f"bad {what} {name[:80]!r}: use a plain file name (letters, digits, spaces, "
            "'.', '-', '_'; no folders, no '..')",
        )
    return name


def resolve_under(root: Path | None, relative: str) -> Path:
    """The path ``relative`` names under ``root``; a 403 for anything outside it (``..``, absolute paths,
    symbolic links leading out), a 404 when it does not exist."""
    if root is None:
        raise AppError(403, "opening server-side files is off: start the app with --root DIR to allow it")
    rel = Path(relative)
    if rel.is_absolute() or ".." in rel.parts or "\0" in relative:
        raise AppError(
            403, f"{relative[:120]!r}: only paths inside the --root folder can be opened (no '..', no absolute paths)"
        )
    base = root.resolve()
    path = (base / rel).resolve()
    if not path.is_relative_to(base):
        raise AppError(403, f"{relative[:120]!r} leads outside the --root folder")
    if not path.exists():
        raise AppError(404, f"{relative[:120]!r} not found under the --root folder")
    return path


def sniff_video(head: bytes) -> str | None:
    """The container of a video file from its first bytes (``"mp4"``, ``"matroska"``, ``"avi"``) or None."""
    if len(head) >= 12 and head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip"):
        return "mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    return None


def read_mask_png(data: bytes, size: tuple[int, int], max_objects: int) -> np.ndarray:
    """An index PNG (bytes) as ``(H, W)`` uint8 ids, checked: a PNG by content, one channel ('P', 'L' or
    '1'), the video's ``size (H, W)``, ids 0..max_objects. Anything else is a 400 saying what is wrong."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise AppError(400, "not a PNG file (an index mask must be a PNG: one id per pixel)")
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            if img.mode not in ("P", "L", "1"):
                raise AppError(400, f"the PNG is {img.mode}, not a single-channel index mask ('P' palette or 'L' gray)")
            mask = np.array(img, dtype=np.uint8)
    except AppError:
        raise
    except Exception as err:  # noqa: BLE001 - PIL raises many types for corrupt files
        raise AppError(400, f"cannot read the PNG ({err.__class__.__name__}: {err})") from None
    return check_mask(mask, size, max_objects)


def check_mask(mask: np.ndarray, size: tuple[int, int], max_objects: int) -> np.ndarray:
    """``mask (H, W)`` uint8 if it has the video's size and ids 0..max_objects only, else a 400."""
    if mask.shape != tuple(size):
        raise AppError(400, f"the mask is {mask.shape[1]}x{mask.shape[0]}, the video is {size[1]}x{size[0]}")
    bad = [int(v) for v in np.unique(mask) if v > max_objects]
    if bad:
        shown = ", ".join(map(str, bad[:5])) + (" ..." if len(bad) > 5 else "")
        raise AppError(400, f"the mask has object id(s) {shown}; the app handles ids 1..{max_objects}")
    return mask


@dataclass(eq=False)
class Video:
    """One decoded video: ``frames (T, H, W, 3)`` uint8 RGB, its display ``name``, frame ``names`` (file
    stems of a frame folder, else ``00000``, ``00001`` ...) and frame rate."""

    key: str
    name: str
    frames: np.ndarray
    names: tuple[str, ...]
    fps: float
    pins: int = 0
    last_used: float = field(default_factory=time.monotonic)
    _jpegs: dict[int, bytes] = field(default_factory=dict, repr=False)

    @property
    def size(self) -> tuple[int, int]:
        return int(self.frames.shape[1]), int(self.frames.shape[2])

    @property
    def nbytes(self) -> int:
        return int(self.frames.nbytes) + sum(map(len, self._jpegs.values()))

    def jpeg(self, k: int) -> bytes:
        """Frame ``k`` as a JPEG for the page (encoded once)."""
        if not 0 <= k < len(self.frames):
            raise AppError(404, f"frame {k} out of range: the video has {len(self.frames)} frames")
        data = self._jpegs.get(k)
        if data is None:
            buf = io.BytesIO()
            Image.fromarray(self.frames[k]).save(buf, format="JPEG", quality=92)
            data = self._jpegs[k] = buf.getvalue()
        return data


def decode_video(path: Path, max_bytes: int) -> tuple[np.ndarray, tuple[str, ...], float]:
    """Decode a video file or a frame folder whole: ``(frames (T, H, W, 3) uint8, frame names, fps)``; a 413 when it
    would take more than ``max_bytes`` decoded, a 400 when it cannot be read."""
    from tamvt.data.images import list_frame_files
    from tamvt.data.video import frame_names, open_frames

    try:
        if path.is_dir() and not list_frame_files(path):
            raise AppError(400, f"{path.name}: no frames (jpg / jpeg / png) in the folder")
        source = open_frames(path)
        n, (h, w), fps = len(source), source.size, source.fps or 24.0
        _check_decoded_size(n, h, w, max_bytes)
        frames = np.empty((n, h, w, 3), dtype=np.uint8)
        count = 0
        for i, frame in source.iter_frames():
            if frame.shape != (h, w, 3):
                raise AppError(400, f"frame {i} is {frame.shape[1]}x{frame.shape[0]}, the first is {w}x{h}")
            if i >= len(frames):  # the header under-counted the frames
                _check_decoded_size(i + 1, h, w, max_bytes)
                frames = np.concatenate([frames, np.empty_like(frames[: max(1, len(frames) // 4)])])
            frames[i] = frame
            count = i + 1
    except InputError as err:
        raise AppError(400, f"cannot read the video: {err.problem}") from None
    if count == 0:
        raise AppError(400, "the video has no decodable frames")
    # a folder yields all its frames or fails; a video's header may miscount them
    names = source.names if count == n else frame_names(count)
    return (frames[:count] if count < len(frames) else frames), names, float(fps)


def _check_decoded_size(n: int, h: int, w: int, max_bytes: int) -> None:
    need = n * h * w * 3
    if need > max_bytes:
        raise AppError(
            413,
            f"the video is too large to annotate here: {n} frames of {w}x{h} take "
            f"{need / 2**20:.0f} MiB decoded, the limit is {max_bytes / 2**20:.0f} MiB "
            "(start the app with a larger --max-video-mb, or cut the video)",
        )


class VideoCache:
    """Decoded videos by key, at most ``capacity`` bytes in all; pinned videos (open in a session) stay.

    Thread-safe; a video being decoded by one request is not decoded again by another.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._videos: dict[str, Video] = {}
        self._lock = threading.Lock()
        self._decoding: dict[str, threading.Lock] = {}

    def open(self, key: str, name: str, path: Path, max_bytes: int) -> Video:
        """The video ``key`` pinned (decoded from ``path`` if it is not cached); :meth:`release` it after."""
        with self._lock:
            gate = self._decoding.setdefault(key, threading.Lock())
        with gate:
            try:
                with self._lock:
                    video = self._videos.get(key)
                    if video is not None:
                        video.pins += 1
                        video.last_used = time.monotonic()
                        return video
                frames, names, fps = decode_video(path, max_bytes)
                video = Video(key, name, frames, names, fps, pins=1)
                with self._lock:
                    self._make_room(video.nbytes)
                    self._videos[key] = video
                return video
            finally:
                with self._lock:
                    self._decoding.pop(key, None)

    def release(self, video: Video, drop: bool = False) -> None:
        """Unpin ``video``; with ``drop``, free its frames now unless another session still uses it."""
        with self._lock:
            video.pins = max(0, video.pins - 1)
            video.last_used = time.monotonic()
            if drop and video.pins == 0 and self._videos.get(video.key) is video:
                del self._videos[video.key]
            self._make_room(0)

    def __contains__(self, key: str) -> bool:
        return key in self._videos

    @property
    def nbytes(self) -> int:
        return sum(v.nbytes for v in self._videos.values())

    def _make_room(self, extra: int) -> None:
        """Drop unpinned videos, least recently used first, until ``extra`` more bytes fit; a 503 when the
        pinned ones alone leave no room (caller holds the lock)."""
        for video in sorted(self._videos.values(), key=lambda v: v.last_used):
            if self.nbytes + extra <= self.capacity:
                return
            if video.pins == 0:
                del self._videos[video.key]
        if extra and self.nbytes + extra > self.capacity:
            raise AppError(
                503,
                f"the server holds {self.nbytes / 2**20:.0f} MiB of open videos and this one needs "
                f"{extra / 2**20:.0f} MiB more (limit {self.capacity / 2**20:.0f} MiB): close another "
                "page or start the app with a larger --cache-mb",
            )
