"""Stacking training samples for a ``DataLoader(batch_size > 1)`` (the trainer uses one sample per step)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from tamvt.data.training.batch import TrainingSample


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

    def to(self, device: torch.device | str, non_blocking: bool = False) -> TrainingBatch:
        """The same batch with its tensors on ``device``."""
        return replace(
            self,
            frames=self.frames.to(device, non_blocking=non_blocking),
            masks=self.masks.to(device, non_blocking=non_blocking),
            void=self.void.to(device, non_blocking=non_blocking),
        )

    def pin_memory(self) -> TrainingBatch:
        """Called by ``DataLoader(pin_memory=True)`` on custom batch types."""
        return replace(
            self, frames=self.frames.pin_memory(), masks=self.masks.pin_memory(), void=self.void.pin_memory()
        )


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
