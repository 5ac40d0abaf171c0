"""The common, lazy description of one video that every dataset reader produces.

A :class:`VideoSequence` holds paths and metadata only; frames and masks are decoded on demand,
so a reader can describe a 10,000-frame video without loading it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tamvt.errors import InputError

VOID_ID = 255


@dataclass(frozen=True)
class VideoSequence:
    """One video of a dataset (or the user's own video).

    Attributes:
        name: sequence name (folder name in the dataset layout).
        frame_names: one stem per frame in temporal order, e.g. ``"00000"``; output PNGs use them.
        frame_paths: one image path per frame, or ``None`` when the frames come from ``video_path``.
        video_path: a video file to decode lazily, or ``None``.
        mask_paths: frame index -> annotation PNG, for the annotated frames only.
        objects: object id -> index of the first frame where the object is annotated.
        size: original ``(H, W)`` of the frames.
        void_id: the mask value meaning "ignore" (255 in DAVIS / VOST), or ``None``.
        extra: format-specific metadata (e.g. ``{"visor_split": "unseen"}``).
    """

    name: str
    frame_names: tuple[str, ...]
    frame_paths: tuple[Path, ...] | None
    video_path: Path | None
    mask_paths: Mapping[int, Path]
    objects: Mapping[int, int]
    size: tuple[int, int]
    void_id: int | None = VOID_ID
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frame_names)

    @property
    def annotated(self) -> tuple[int, ...]:
        """Indices of the frames that have a ground-truth mask, in order."""
        return tuple(sorted(self.mask_paths))

    def read_mask(self, index: int) -> np.ndarray:
        """Ground-truth ids of annotated frame ``index`` as ``(H, W)`` uint8 (void kept as ``void_id``)."""
        from tamvt.data.palette import read_index_png

        if index not in self.mask_paths:
            raise KeyError(f"{self.name}: frame {index} is not annotated")
        mask, _ = read_index_png(self.mask_paths[index])
        if mask.shape != self.size:
            raise InputError(
                self.mask_paths[index],
                f"mask size {mask.shape[1]}x{mask.shape[0]} != frame size {self.size[1]}x{self.size[0]}",
            )
        return mask

    def read_frame(self, index: int) -> np.ndarray:
        """Frame ``index`` as ``(H, W, 3)`` uint8 RGB. Random access; prefer :meth:`iter_frames` for videos."""
        if self.frame_paths is not None:
            from tamvt.data.images import read_image

            return read_image(self.frame_paths[index], expected_size=self.size)
        for _, frame in self.iter_frames(start=index):
            return frame
        raise IndexError(f"{self.name}: frame {index} out of range ({len(self)} frames)")

    def iter_frames(self, start: int = 0) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(index, frame (H, W, 3) uint8 RGB)`` from ``start`` on, decoding one frame at a time."""
        from tamvt.data.images import iter_images
        from tamvt.data.video import iter_video

        if self.frame_paths is not None:
            yield from iter_images(self.frame_paths, start=start, expected_size=self.size)
        elif self.video_path is not None:
            yield from iter_video(self.video_path, start=start)
        else:  # pragma: no cover - readers always set one
            raise ValueError(f"{self.name}: no frames")
