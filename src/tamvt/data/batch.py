"""The training sample (one object, one window) and its batch, as produced by the training datasets.

Every training source — :class:`~tamvt.data.windows.WindowDataset` (real videos),
:class:`~tamvt.data.windows.SyntheticWindowStream` and
:class:`~tamvt.data.static_pseudo.StaticPseudoVideoDataset` — yields :class:`TrainingSample`;
``collate`` stacks samples for a DataLoader (the authors train with one sample per process).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import torch
from torch import Tensor


@dataclass(frozen=True)
class TrainingSample:
    """One object followed through one window of frames.

    Attributes:
        frames: (T, 3, H, W) float32, ImageNet-normalised RGB, in the order the model sees them.
        masks: (T, H, W) uint8, 1 = the target object, 0 = background (other objects included).
        void: (T, H, W) bool, the dataset's "ignore" pixels (already 0 in ``masks``: the loss counts
            them as background like the authors' code; kept for other uses, e.g. metrics).
        num_memory: the first ``num_memory`` frames are memory frames with ground-truth masks; the
            model predicts the rest.
        video: sequence name (or a synthetic / pseudo-video name).
        object_id: the target's id in the source annotation.
        frame_indices: source frame index of each of the T frames (after reversal, so a reversed
            window has decreasing indices; pseudo-videos repeat one image's index).
        reversed: whether the window was time-reversed.
    """

    frames: Tensor
    masks: Tensor
    void: Tensor
    num_memory: int
    video: str
    object_id: int
    frame_indices: tuple[int, ...]
    reversed: bool = False

    def __post_init__(self) -> None:
        t, c, h, w = self.frames.shape
        if c != 3 or self.masks.shape != (t, h, w) or self.void.shape != (t, h, w):
            raise ValueError(f"inconsistent sample shapes: frames {tuple(self.frames.shape)}, "
                             f"masks {tuple(self.masks.shape)}, void {tuple(self.void.shape)}")
        if not 1 <= self.num_memory < t:
            raise ValueError(f"num_memory {self.num_memory} must be in [1, {t - 1}] for {t} frames")

    @property
    def num_frames(self) -> int:
        return self.frames.shape[0]


@dataclass(frozen=True)
class TrainingBatch:
    """B samples of equal length and size, stacked.

    Attributes:
        frames: (B, T, 3, H, W) float32.  masks: (B, T, H, W) uint8.  void: (B, T, H, W) bool.
        num_memory: shared by all samples.  videos, object_ids, frame_indices, reversed: per sample.
    """

    frames: Tensor
    masks: Tensor
    void: Tensor
    num_memory: int
    videos: tuple[str, ...]
    object_ids: tuple[int, ...]
    frame_indices: tuple[tuple[int, ...], ...]
    reversed: tuple[bool, ...]

    def __len__(self) -> int:
        return self.frames.shape[0]

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "TrainingBatch":
        """The same batch with its tensors on ``device``."""
        return replace(
            self,
            frames=self.frames.to(device, non_blocking=non_blocking),
            masks=self.masks.to(device, non_blocking=non_blocking),
            void=self.void.to(device, non_blocking=non_blocking),
        )

    def pin_memory(self) -> "TrainingBatch":
        """Called by ``DataLoader(pin_memory=True)`` on custom batch types."""
        return replace(self, frames=self.frames.pin_memory(), masks=self.masks.pin_memory(), void=self.void.pin_memory())


def collate(samples: Sequence[TrainingSample]) -> TrainingBatch:
    """Stack samples into a :class:`TrainingBatch` (``collate_fn`` for a DataLoader).

    All samples must have the same number of frames, frame size and ``num_memory``.
    """
    if not samples:
        raise ValueError("collate: no samples")
    first = samples[0]
    for s in samples[1:]:
        if s.frames.shape != first.frames.shape or s.num_memory != first.num_memory:
            raise ValueError(
                f"collate: samples differ ({s.video}: {tuple(s.frames.shape)}, memory {s.num_memory} vs "
                f"{first.video}: {tuple(first.frames.shape)}, memory {first.num_memory}); use equal window "
                "length / output size or batch size 1"
            )
    return TrainingBatch(
        frames=torch.stack([s.frames for s in samples]),
        masks=torch.stack([s.masks for s in samples]),
        void=torch.stack([s.void for s in samples]),
        num_memory=first.num_memory,
        videos=tuple(s.video for s in samples),
        object_ids=tuple(s.object_id for s in samples),
        frame_indices=tuple(s.frame_indices for s in samples),
        reversed=tuple(s.reversed for s in samples),
    )
