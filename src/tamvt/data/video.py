"""Video files (PyAV): probing, lazy decoding, MP4 box probing for unreadable files, and the video writer;
and :func:`open_frames`, the one way from a path (a frame folder or a video file) to lazily read frames.

Everything here reads lazily: one frame at a time, so a long video never sits in memory whole.
Bad input raises :class:`~tamvt.errors.InputError` naming the file and the problem.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from PIL import Image

from tamvt.atomic import atomic_path
from tamvt.data.images import PIL_ERRORS, iter_images, list_frame_files, read_image_size
from tamvt.errors import InputError

# The video files tamvt reads (folders of videos are listed with it; overlay outputs must end with one).
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi")


def frame_name(index: int, count: int) -> str:
    """Name of frame ``index`` of a ``count``-frame video that has no file names of its own: zero-padded
    to 5 digits (the DAVIS width), wider when ``count`` needs it (``00000`` ... ``99999``, then ``100000``)."""
    return f"{index:0{max(5, len(str(count - 1)))}d}"


def frame_names(count: int) -> tuple[str, ...]:
    """:func:`frame_name` of every frame of a ``count``-frame video."""
    return tuple(frame_name(i, count) for i in range(count))


def _av():
    # PyAV is imported on first use: importing tamvt.data must not load FFmpeg.
    import av

    return av


def _ffmpeg_words(err: BaseException) -> str:
    """FFmpeg's reason in words, without its numeric code and the file name."""
    text = getattr(err, "strerror", None) or str(err)
    return re.sub(r"^\[Errno -?\d+\]\s*", "", text).rstrip(".").lower()


def _mp4_boxes(path: Path, size: int) -> list[tuple[str, int, int]]:
    """``(type, offset, declared size)`` of the top-level boxes of an MP4 / MOV file (read from the
    8- or 16-byte box headers; stops at the first header that makes no sense)."""
    boxes = []
    with open(path, "rb") as f:
        pos = 0
        while pos + 8 <= size:
            f.seek(pos)
            head = f.read(16)
            length, kind = int.from_bytes(head[:4], "big"), head[4:8].decode("latin-1")
            if length == 1 and len(head) == 16:
                length = int.from_bytes(head[8:16], "big")
            elif length == 0:  # "extends to the end of the file"
                length = size - pos
            if length < 8 or not kind.isprintable():
                break
            boxes.append((kind, pos, length))
            pos += length
    return boxes


def _describe_unreadable(path: Path, ffmpeg_reason: str) -> str:
    """Why FFmpeg cannot open ``path``, in words: empty, cut-off MP4, an image, text, or unknown."""
    size = path.stat().st_size
    if size == 0:
        return "empty file (0 bytes)"
    with open(path, "rb") as f:
        head = f.read(4096)
    if head[4:8] == b"ftyp":  # MP4 / MOV / 3GP: the index ('moov' box) is needed to find any frame
        boxes = _mp4_boxes(path, size)
        if boxes and "moov" not in {kind for kind, _, _ in boxes}:
            kind, offset, length = boxes[-1]
            if offset + length > size:
                return (
                    f"truncated MP4: the file ends at byte {size}, inside its '{kind}' box that should end at "
                    f"byte {offset + length}, and the index ('moov' box) that is written last is missing "
                    f"(a recording or copy cut off before the end); no frame can be read from it"
                )
            return "damaged MP4: it has no index ('moov' box); no frame can be read from it"
    try:
        with Image.open(path) as img:
            return f"it is a {img.format} image, not a video"
    except PIL_ERRORS:
        pass
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(c.isprintable() or c.isspace() for c in text):
        return f"it is a text file, not a video (it begins {text[:40]!r})"
    return f"not a video file FFmpeg can read ({ffmpeg_reason})"


def _open_video(path: Path):
    av = _av()
    if not path.is_file():
        raise InputError(path, "video file not found")
    try:
        container = av.open(str(path), mode="r")
    except (av.error.FFmpegError, OSError, ValueError) as err:
        raise InputError(path, f"cannot open video: {_describe_unreadable(path, _ffmpeg_words(err))}") from None
    if not container.streams.video:
        container.close()
        raise InputError(path, "no video stream (an audio-only or data file?)")
    return container


def iter_video(path: str | Path, start: int = 0) -> Iterator[tuple[int, np.ndarray]]:
    """Decode a video file lazily: yield ``(index, frame (H, W, 3) uint8 RGB)`` from ``start`` on.

    Frames before ``start`` are decoded and dropped: container seeking is not frame-accurate for
    every codec, and decoding is what makes the frame index trustworthy.
    """
    for index, frame, _ in iter_video_timed(path, start):
        yield index, frame


def iter_video_timed(path: str | Path, start: int = 0) -> Iterator[tuple[int, np.ndarray, float | None]]:
    """:func:`iter_video` with each frame's presentation time: ``(index, frame (H, W, 3) uint8 RGB, seconds
    from the stream's start or None when the file gives none)``. A variable-frame-rate file (an AVI that
    skips frame slots, a phone's MP4) shows here: its times are not ``index / fps``."""
    av = _av()
    path = Path(path)
    container = _open_video(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        first = None
        index = 0
        try:
            for frame in container.decode(stream):
                if index >= start:
                    time = None
                    if frame.pts is not None and frame.time_base is not None:
                        first = frame.pts if first is None else first
                        time = float((frame.pts - first) * frame.time_base)
                    yield index, frame.to_ndarray(format="rgb24"), time
                elif first is None and frame.pts is not None:
                    first = frame.pts
                index += 1
        except (av.error.FFmpegError, OSError, ValueError) as err:
            raise InputError(
                path, f"video frame {index} does not decode: the file is damaged there ({_ffmpeg_words(err)})"
            ) from None
        if index == 0:
            raise InputError(path, "video has no decodable frames")
    finally:
        container.close()


def _count_packets(container, stream, path: Path) -> tuple[int, float | None]:
    """Frames whose data is in the file, by demuxing (no decoding; the final flush packet has size 0), and
    where the last of them ends in seconds from the first (None when the packets carry no times)."""
    av = _av()
    count, first, end = 0, None, None
    try:
        for p in container.demux(stream):
            if p.size <= 0:
                continue
            count += 1
            if p.pts is not None and p.time_base is not None:
                first = p.pts if first is None else min(first, p.pts)
                stop = p.pts + max(int(p.duration or 0), 0)
                end = stop if end is None else max(end, stop)
    except (av.error.FFmpegError, OSError, ValueError) as err:
        raise InputError(path, f"cannot read video: the file is damaged ({_ffmpeg_words(err)})") from None
    if end is None or first is None:
        return count, None
    return count, float((end - first) * stream.time_base)


def _read_header(
    path: Path, count_packets: bool
) -> tuple[int | None, int | None, tuple[int, int], float | None, float | None, float | None]:
    """``(header frame count or None, demuxed frame count or None, (H, W), fps or None, header duration in
    seconds or None, end of the demuxed packets in seconds or None)`` of a video file."""
    container = _open_video(path)
    try:
        stream = container.streams.video[0]
        h, w = stream.codec_context.height, stream.codec_context.width
        rate = stream.average_rate or stream.guessed_rate
        header = int(stream.frames) or None
        duration = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
        counted, end = _count_packets(container, stream, path) if count_packets or header is None else (None, None)
    finally:
        container.close()
    if h <= 0 or w <= 0:
        raise InputError(path, "video has no frames")
    return header, counted, (int(h), int(w)), float(rate) if rate else None, duration, end


def probe_video(path: str | Path) -> tuple[int, tuple[int, int], float | None]:
    """``(num_frames, (H, W), fps)`` of a video file without decoding pixels.

    The frame count comes from the container header; when the container has none (e.g. some
    WebM / raw streams), the video packets are counted by demuxing. ``fps`` is ``None`` if unknown.
    """
    path = Path(path)
    header, counted, size, fps, _, _ = _read_header(path, count_packets=False)
    count = header or counted
    if not count:
        raise InputError(path, "video has no frames")
    return int(count), size, fps


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds, from its container: every packet demuxed, no pixel decoded.

    ``frames``: frames whose data is in the file; ``header_frames``: the count the container header
    announces (``None`` when it has none, e.g. Matroska); ``size`` ``(H, W)``; ``fps`` (``None`` if unknown);
    ``duration``: the stream's length in seconds by its header, ``end``: where its last packet ends (each
    ``None`` when unknown). A variable-frame-rate AVI announces frame slots it leaves empty: fewer frames than
    its header says, yet its packets run to the end, so it is not cut off.
    """

    frames: int
    header_frames: int | None
    size: tuple[int, int]
    fps: float | None
    duration: float | None = None
    end: float | None = None

    @property
    def runs_to_the_end(self) -> bool:
        """The packets reach the length the header announces (to within half a frame)."""
        if self.duration is None or self.end is None:
            return False
        return self.end >= self.duration - 0.5 / (self.fps or 24.0)

    @property
    def truncated(self) -> bool:
        """The file ends before the frames its header announces (a recording or copy cut off)."""
        return self.header_frames is not None and self.frames < self.header_frames and not self.runs_to_the_end

    @property
    def variable_rate(self) -> bool:
        """Fewer frames than the header's frame slots, spread over the whole length (skipped slots)."""
        return self.header_frames is not None and self.frames < self.header_frames and self.runs_to_the_end

    def describe_truncation(self) -> str:
        held = f"only frames 0-{self.frames - 1} are in the file" if self.frames else "no frame is in the file"
        return f"truncated at frame {self.frames}: the header announces {self.header_frames} frames, {held}"


def inspect_video(path: str | Path) -> VideoInfo:
    """Count the frames a video file really holds (demuxing, cheap next to decoding) and compare them
    with its header: a cut-off file shows as :attr:`VideoInfo.truncated`."""
    path = Path(path)
    header, counted, size, fps, duration, end = _read_header(path, count_packets=True)
    assert counted is not None  # count_packets: always counted
    return VideoInfo(counted, header, size, fps, duration, end)


def available_video_codec() -> str:
    """``"libx264"`` when the installed PyAV has it, else ``"mpeg4"`` (always built into FFmpeg)."""
    av = _av()
    for name in ("libx264", "mpeg4"):
        try:
            av.codec.Codec(name, "w")
            return name
        except Exception:  # noqa: BLE001 - PyAV raises different types across versions
            continue
    raise RuntimeError("neither libx264 nor mpeg4 encoder is available in PyAV")


class VideoWriter:
    """Write ``(H, W, 3)`` uint8 RGB frames to a video file (yuv420p, libx264 or mpeg4).

    Use as a context manager. Frames go to a temporary file next to ``path`` that is renamed
    onto ``path`` only when the block ends without an exception, so an interrupted run never
    leaves a truncated video that looks complete. Odd sizes are padded to even (yuv420p needs
    even width and height) by repeating the last row / column.

    With ``timed``, each frame is written at its own time (:meth:`write`'s ``time`` and ``duration``, in
    seconds, kept to the millisecond): a variable-frame-rate video keeps its timing and its length.
    """

    TIMED_BASE = Fraction(1, 1000)  # the time base of a timed video: milliseconds (mpeg4 allows at most 1/65535)

    def __init__(self, path: str | Path, fps: float = 24.0, codec: str | None = None, *, timed: bool = False) -> None:
        self.path = Path(path)
        self.fps = fps
        self.codec = codec
        self.timed = timed
        self._last_pts = -1
        self._durations: dict[int, int] = {}  # timed: each frame's duration by its pts, given to its packet
        self._container: Any = None  # av's OutputContainer / VideoStream once the first frame is written
        self._stream: Any = None
        self._tmp: Path | None = None
        self._commit: contextlib.ExitStack | None = None
        self._size: tuple[int, int] | None = None  # (H, W) of the input frames
        self.frames_written = 0

    def __enter__(self) -> VideoWriter:
        # the temporary name keeps the video suffix: PyAV picks the container format from it
        self._commit = contextlib.ExitStack()
        self._tmp = self._commit.enter_context(atomic_path(self.path, suffix=self.path.suffix or ".mp4"))
        return self

    def _open(self, h: int, w: int) -> None:
        av = _av()
        codec = self.codec or available_video_codec()
        rate = Fraction(self.fps).limit_denominator(1001)
        try:
            self._container = av.open(str(self._tmp), mode="w")
            stream = self._container.add_stream(codec, rate=rate)
        except (av.error.FFmpegError, OSError, ValueError) as err:
            raise InputError(self.path, f"cannot write a {codec} video here ({err})") from None
        stream.width, stream.height = w + w % 2, h + h % 2
        stream.pix_fmt = "yuv420p"
        if self.timed:  # no B-frames: the muxer takes each sample's length from the next one's decoding time
            stream.time_base = stream.codec_context.time_base = self.TIMED_BASE
            stream.codec_context.max_b_frames = 0
        if codec == "libx264":
            stream.options = {"crf": "18"}
        else:  # mpeg4's default 200 kb/s smears thin mask outlines
            stream.bit_rate = 8_000_000
        self._stream = stream
        self._size = (h, w)

    def write(self, frame: np.ndarray, time: float | None = None, duration: float | None = None) -> None:
        """Append one ``(H, W, 3)`` uint8 RGB frame; every frame must have the first one's size. A ``timed``
        writer shows it at ``time`` seconds for ``duration`` seconds (default: right after the previous
        frame, for ``1 / fps``); a time not after the previous frame's moves one millisecond after it."""
        if self._tmp is None:
            raise RuntimeError("VideoWriter must be used as a context manager")
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frame must be (H, W, 3) uint8, got {frame.shape} {frame.dtype}")
        if self._container is None:
            self._open(frame.shape[0], frame.shape[1])
        if frame.shape[:2] != self._size:
            raise ValueError(f"frame size {frame.shape[:2]} != first frame size {self._size}")
        h, w = self._size
        if h % 2 or w % 2:
            frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        av = _av()
        vframe = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        if self.timed:
            tick = self.TIMED_BASE
            if time is None:
                pts = self._last_pts + round(1 / (self.fps * tick)) if self._last_pts >= 0 else 0
            else:
                pts = round(time / tick)
            vframe.pts = self._last_pts = max(pts, self._last_pts + 1)
            vframe.time_base = tick
            self._durations[vframe.pts] = max(1, round((1 / self.fps if duration is None else duration) / tick))
        else:
            vframe.pts = self.frames_written
            vframe.time_base = Fraction(1) / self._stream.codec_context.framerate
        self._mux(self._stream.encode(vframe))
        self.frames_written += 1

    def _mux(self, packets: list) -> None:
        if self.timed:  # the encoder gives every packet one 1 / fps; a timed frame lasts until the next
            for packet in packets:
                if packet.pts is not None and packet.pts in self._durations:
                    packet.duration = self._durations.pop(packet.pts)
        self._container.mux(packets)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        commit, self._commit = self._commit, None
        assert commit is not None  # set by __enter__
        try:
            if self._container is not None:
                if exc_type is None:
                    self._mux(self._stream.encode(None))  # flush delayed frames
                self._container.close()
            if exc_type is None and self.frames_written == 0:
                raise ValueError(f"{self.path}: no frames were written")
        except BaseException as err:
            commit.__exit__(type(err), err, err.__traceback__)  # removes the temporary file
            raise
        finally:
            self._container = self._stream = None
        commit.__exit__(exc_type, exc, tb)  # renames it onto the path, or removes it after an error


class Frames:
    """A frame folder or a video file, probed and not decoded: one name per frame, ``size`` ``(H, W)``, ``fps``
    (``None`` for a folder, or when the file does not say) and the frames, decoded one at a time by
    :meth:`iter_frames`. Exactly one of ``frame_paths`` (a folder's image files, natural order) and
    ``video_path`` is set. A folder's ``size`` is read from its first image when first asked for."""

    def __init__(
        self,
        path: Path,
        names: tuple[str, ...],
        *,
        frame_paths: tuple[Path, ...] | None = None,
        video_path: Path | None = None,
        size: tuple[int, int] | None = None,
        fps: float | None = None,
        video_info: VideoInfo | None = None,
    ) -> None:
        self.path = path
        self.names = names
        self.frame_paths = frame_paths
        self.video_path = video_path
        self.fps = fps
        self.video_info = video_info  # set when the frames were counted by demuxing (``count_packets``)
        if size is not None:
            self.size = size

    @cached_property
    def size(self) -> tuple[int, int]:
        assert self.frame_paths is not None  # a video's size is given when it is opened
        return read_image_size(self.frame_paths[0])

    def __len__(self) -> int:
        return len(self.names)

    def iter_frames(self, start: int = 0) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(index, frame (H, W, 3) uint8 RGB)`` from ``start`` on, decoding one frame at a time (a
        folder's images must all have the first one's size)."""
        if self.frame_paths is not None:
            return iter_images(self.frame_paths, start=start, expected_size=self.size)
        assert self.video_path is not None  # exactly one of the two is set
        return iter_video(self.video_path, start=start)

    def iter_timed_frames(self) -> Iterator[tuple[int, np.ndarray, float | None]]:
        """:meth:`iter_frames` from the first frame, with each frame's time in seconds (None for a folder's
        images, and for a video file that gives none): see :func:`iter_video_timed`."""
        if self.video_path is not None:
            return iter_video_timed(self.video_path)
        return ((i, frame, None) for i, frame in self.iter_frames())


def open_frames(path: str | Path, *, count_packets: bool = False) -> Frames:
    """The frames of ``path``, a folder of images (names: the file stems) or a video file (names:
    :func:`frame_names`), probed only: nothing is decoded until :meth:`Frames.iter_frames`.

    A video's frame count comes from its header (:func:`probe_video`); with ``count_packets`` every packet
    is demuxed instead (:func:`inspect_video`, kept in ``video_info``: whether the file is cut off) and the
    frames are those in the file, at most as many as the header announces (possibly none: callers decide).
    """
    path = Path(path)
    if path.is_dir():
        paths = tuple(list_frame_files(path))
        if not paths:
            raise InputError(path, "no frames (jpg/jpeg/png) in the folder")
        return Frames(path, tuple(p.stem for p in paths), frame_paths=paths)
    if not path.is_file():
        raise InputError(path, "not found (expected a folder of frames or a video file)")
    if count_packets:
        info = inspect_video(path)
        n = min(info.frames, info.header_frames or info.frames)
        return Frames(path, frame_names(n), video_path=path, size=info.size, fps=info.fps, video_info=info)
    n, size, fps = probe_video(path)
    return Frames(path, frame_names(n), video_path=path, size=size, fps=fps)
