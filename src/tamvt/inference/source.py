"""Frame sources for inference: a video file, a folder of frames or frames in memory, read lazily.

:func:`open_video` turns what a user passes to :meth:`tamvt.inference.predictor.Predictor.start` into
an object with ``size``, ``frame_names``, ``len()`` and ``iter_frames(start)``; :func:`check_frame`
is the one check of a frame's shape and type.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from tamvt.data.sequence import VideoSequence
from tamvt.data.video import frame_names, open_frames
from tamvt.errors import InputError, SessionError


class ArrayFrames:
    """In-memory frames ``(T, H, W, 3)`` uint8 RGB (an array or a list of arrays) with the frame-source
    interface of :class:`VideoSequence` (``size``, ``frame_names``, ``len``, ``iter_frames``)."""

    def __init__(self, frames: np.ndarray | Sequence[np.ndarray], name: str = "video") -> None:
        if len(frames) == 0:
            raise SessionError("the video has no frames")
        first = np.asarray(frames[0])
        check_frame(first, None)
        self.frames = frames
        self.name = name
        self.size: tuple[int, int] = (int(first.shape[0]), int(first.shape[1]))
        self.frame_names: tuple[str, ...] = frame_names(len(frames))

    def __len__(self) -> int:
        return len(self.frames)

    def iter_frames(self, start: int = 0) -> Iterator[tuple[int, np.ndarray]]:
        for i in range(max(start, 0), len(self.frames)):
            yield i, check_frame(np.asarray(self.frames[i]), self.size)

    def read_frame(self, index: int) -> np.ndarray:
        return check_frame(np.asarray(self.frames[index]), self.size)


VideoSource = VideoSequence | ArrayFrames


def check_frame(frame: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """``frame`` if it is ``(H, W, 3)`` uint8 (and of ``size`` when given), else :class:`SessionError`."""
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise SessionError(f"a frame must be (H, W, 3) uint8 RGB, got shape {frame.shape} {frame.dtype}")
    if size is not None and frame.shape[:2] != tuple(size):
        raise SessionError(f"frame size {frame.shape[1]}x{frame.shape[0]} != video size {size[1]}x{size[0]}")
    return frame


def open_video(
    video: VideoSequence | str | Path | np.ndarray | Sequence[np.ndarray], *, allow_truncated: bool = False
) -> VideoSource:
    """A lazily readable frame source for a :class:`VideoSequence`, a frame folder, a video file or
    in-memory frames. Paths are only probed here (names, size, frame count); frames are decoded later.

    A video file that ends before the frames its header announces (cut off) is an :class:`InputError`
    naming the first missing frame; with ``allow_truncated`` the source has the frames that are there."""
    if isinstance(video, (VideoSequence, ArrayFrames)):
        return video
    if isinstance(video, (str, Path)):
        frames = open_frames(video, count_packets=True)
        info = frames.video_info
        if info is not None:
            if info.truncated and not allow_truncated:
                raise InputError(
                    frames.path,
                    f"{info.describe_truncation()}; open_video(path, allow_truncated=True) "
                    "gives a source of those frames",
                )
            if len(frames) == 0:
                raise InputError(frames.path, "video has no frames")
        size = frames.size
        return VideoSequence(
            name=frames.path.stem,
            frame_names=frames.names,
            frame_paths=frames.frame_paths,
            video_path=frames.video_path,
            mask_paths={},
            objects={},
            size=(int(size[0]), int(size[1])),
            void_id=None,
        )
    return ArrayFrames(video)


def iter_frames_in_order(
    source: VideoSource, start: int, step: int, chunk: int = 32
) -> Iterator[tuple[int, np.ndarray]]:
    """``(index, frame)`` from ``start`` forward (``step=1``: ``source.iter_frames``) or backward
    (``step=-1``: start, start-1, ..., 0). Backward, frames with random access (a frame folder, frames
    in memory) are read one by one; a video file is decoded forward in chunks of ``chunk`` frames that
    are then yielded last to first, so at most ``chunk`` decoded frames are held."""
    if step > 0:
        yield from source.iter_frames(start=start)
        return
    if getattr(source, "video_path", None) is None or getattr(source, "frame_paths", None) is not None:
        for i in range(start, -1, -1):
            yield i, source.read_frame(i)
        return
    end = start
    while end >= 0:
        first = max(0, end - chunk + 1)
        frames = []
        for i, frame in source.iter_frames(start=first):
            if i > end:
                break
            frames.append((i, frame))
        yield from reversed(frames)
        end = first - 1
