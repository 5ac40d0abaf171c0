"""Videos for the app: names and paths checked, uploads checked by content, each video decoded once
into memory and kept in a cache bounded in bytes.

A decoded video is ``(T, H, W, 3)`` uint8 RGB in memory while a session uses it (pinned): the engine's
input and the page's frames (JPEG, encoded on first request and kept) come from it, so a video is decoded
once for all the sessions open on it. When the last one goes to disk the video leaves memory (a session
opening it again decodes it again from its source); the cache's size bounds the videos open at once.
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
from tamvt.data.video import VideoInfo
from tamvt.errors import InputError

JPEG_QUALITY = 90  # the page's frames: about a tenth to a twentieth of the decoded bytes

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


@dataclass(frozen=True)
class Decoded:
    """A video decoded whole: ``frames (T, H, W, 3)`` uint8 RGB, frame ``names``, ``fps``; ``times``: each
    frame's time in seconds (None for a frame folder, or a file without times), ``duration``: where the last
    frame ends (seconds, None when unknown); ``info``: what the container says (None for a folder)."""

    frames: np.ndarray
    names: tuple[str, ...]
    fps: float
    times: tuple[float, ...] | None = None
    duration: float | None = None
    info: VideoInfo | None = None

    @property
    def variable_rate(self) -> bool:
        """The frames are not ``1 / fps`` apart (by more than half a frame somewhere)."""
        if self.times is None:
            return False
        return any(abs(t - k / self.fps) > 0.5 / self.fps for k, t in enumerate(self.times))

    def notices(self) -> list[dict]:
        """What the page must say about this video: a cut-off file, a variable frame rate."""
        out = []
        n, info = len(self.frames), self.info
        if info is not None and info.header_frames is not None and info.truncated:
            out.append(
                {
                    "kind": "truncated",
                    "frames": n,
                    "header_frames": info.header_frames,
                    "text": f"This video is cut off: {n} frames decode, its header announces {info.header_frames}. "
                    f"Only frames 0-{n - 1} can be annotated and exported.",
                }
            )
        if self.variable_rate:
            length = self.duration if self.duration is not None else (self.times or (0.0,))[-1]
            slots = f" (its header counts {info.header_frames} frame slots)" if info and info.header_frames else ""
            out.append(
                {
                    "kind": "variable_rate",
                    "frames": n,
                    "seconds": round(length, 3),
                    "text": f"Variable frame rate: {n} frames over {length:.1f} s{slots}. Each frame keeps its "
                    "time: the overlay video shows every frame at its time and lasts as long as the source.",
                }
            )
        return out


@dataclass(eq=False)
class Video:
    """One video: its display ``name``, frame ``names`` (file stems of a frame folder, else ``00000``,
    ``00001`` ...), frame rate, each frame's time (``times``, seconds; None when the frames are ``1 / fps``
    apart) and ``duration``, and what the page must be told (``notices``).

    The decoded frames ``(T, H, W, 3)`` uint8 RGB are the model's input, held while a session uses the
    video (pinned); the page's frames are JPEGs (quality :data:`JPEG_QUALITY`, encoded on first request)."""

    key: str
    name: str
    _frames: np.ndarray | None
    names: tuple[str, ...]
    fps: float
    times: tuple[float, ...] | None = None
    duration: float | None = None
    notices: list[dict] = field(default_factory=list)
    source: Path | None = None
    pins: int = 0
    last_used: float = field(default_factory=time.monotonic)
    _jpegs: dict[int, bytes] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, key: str, name: str, decoded: Decoded, source: Path | None = None) -> Video:
        times = decoded.times if decoded.variable_rate else None
        return cls(
            key,
            name,
            decoded.frames,
            decoded.names,
            decoded.fps,
            times,
            decoded.duration,
            decoded.notices(),
            source,
        )

    @property
    def frames(self) -> np.ndarray:
        """The decoded frames ``(T, H, W, 3)`` uint8 RGB (only while the video is in use)."""
        if self._frames is None:
            raise AppError(410, f"{self.name}: its decoded frames were dropped; open the video again")
        return self._frames

    @property
    def decoded(self) -> bool:
        return self._frames is not None

    @property
    def count(self) -> int:
        return len(self.names)

    @property
    def size(self) -> tuple[int, int]:
        return self._size

    def __post_init__(self) -> None:
        assert self._frames is not None
        self._size = (int(self._frames.shape[1]), int(self._frames.shape[2]))

    @property
    def nbytes(self) -> int:
        raw = int(self._frames.nbytes) if self._frames is not None else 0
        return raw + sum(map(len, self._jpegs.values()))

    def drop_frames(self) -> None:
        """Forget the decoded frames (when no session uses the video); the page's JPEGs stay."""
        if self.source is not None:
            self._frames = None

    def restore(self, decoded: Decoded) -> None:
        self._frames = decoded.frames

    def jpeg(self, k: int) -> bytes:
        """Frame ``k`` as a JPEG for the page (encoded once)."""
        if not 0 <= k < self.count:
            raise AppError(404, f"frame {k} out of range: the video has {self.count} frames")
        data = self._jpegs.get(k)
        if data is None:
            buf = io.BytesIO()
            Image.fromarray(self.frames[k]).save(buf, format="JPEG", quality=JPEG_QUALITY)
            data = self._jpegs[k] = buf.getvalue()
        return data


def decode_video(path: Path, max_bytes: int) -> Decoded:
    """Decode a video file or a frame folder whole, with each frame's time; a 413 when it would take more than
    ``max_bytes`` decoded, a 400 when it cannot be read. A video's frames are counted by demuxing first: a
    cut-off file gives the frames it holds (and says so in :meth:`Decoded.notices`)."""
    from tamvt.data.images import list_frame_files
    from tamvt.data.video import frame_names, open_frames

    try:
        if path.is_dir() and not list_frame_files(path):
            raise AppError(400, f"{path.name}: no frames (jpg / jpeg / png) in the folder")
        source = open_frames(path, count_packets=path.is_file())
        n, (h, w), fps = len(source), source.size, source.fps or 24.0
        _check_decoded_size(max(n, 1), h, w, max_bytes)
        frames = np.empty((max(n, 1), h, w, 3), dtype=np.uint8)
        times: list[float | None] = []
        count = 0
        for i, frame, t in source.iter_timed_frames():
            if frame.shape != (h, w, 3):
                raise AppError(400, f"frame {i} is {frame.shape[1]}x{frame.shape[0]}, the first is {w}x{h}")
            if i >= len(frames):  # the packets under-counted the frames
                _check_decoded_size(i + 1, h, w, max_bytes)
                frames = np.concatenate([frames, np.empty_like(frames[: max(1, len(frames) // 4)])])
            frames[i] = frame
            times.append(t)
            count = i + 1
    except InputError as err:
        raise AppError(400, f"cannot read the video: {err.problem}") from None
    if count == 0:
        raise AppError(400, "the video has no decodable frames")
    # a folder yields all its frames or fails; a video's header may miscount them
    names = source.names if count == n else frame_names(count)
    frames = frames[:count] if count < len(frames) else frames
    info = source.video_info
    known = [t for t in times if t is not None]
    if len(known) != count:
        return Decoded(frames, names, float(fps), info=info)
    # where the last frame ends: by the packets' own durations, else one frame (1 / fps) after it
    duration = info.end if info is not None and info.end is not None and info.end > known[-1] else known[-1] + 1 / fps
    return Decoded(frames, names, float(fps), tuple(known), duration, info)


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
        """The video ``key`` pinned (decoded from ``path`` if it is not cached, or if its decoded frames were
        dropped); :meth:`release` it after."""
        with self._lock:
            gate = self._decoding.setdefault(key, threading.Lock())
        with gate:
            try:
                with self._lock:
                    video = self._videos.get(key)
                    if video is not None and video.decoded:
                        video.pins += 1
                        video.last_used = time.monotonic()
                        return video
                if video is not None and video.source is not None:  # decode again: its frames were dropped
                    decoded = decode_video(video.source, max_bytes)
                    with self._lock:
                        self._make_room(int(decoded.frames.nbytes))
                        video.restore(decoded)
                        video.pins += 1
                        video.last_used = time.monotonic()
                    return video
                video = Video.of(key, name, decode_video(path, max_bytes), path)
                video.pins = 1  # pinned for the caller, as the two branches above
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
            if video.pins == 0:
                if drop and self._videos.get(video.key) is video:
                    del self._videos[video.key]  # its session went to disk: nothing of it stays in memory
                else:
                    video.drop_frames()  # the model no longer needs the decoded frames: the page's JPEGs stay
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
