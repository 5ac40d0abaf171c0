"""The training sample (one object, one window), as produced by the training datasets.

Every training source — :class:`~tamvt.data.training.windows.WindowDataset` (real videos),
:class:`~tamvt.data.training.synthetic.SyntheticWindows` and
:class:`~tamvt.data.training.static_pseudo.StaticPseudoVideoDataset` — yields :class:`TrainingSample`; the
trainer takes one sample per step (the authors train with one sample per process).
"""

from __future__ import annotations

from dataclasses import dataclass

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
            raise ValueError(
                f"inconsistent sample shapes: frames {tuple(self.frames.shape)}, "
                f"masks {tuple(self.masks.shape)}, void {tuple(self.void.shape)}"
            )
        if not 1 <= self.num_memory < t:
            raise ValueError(f"num_memory {self.num_memory} must be in [1, {t - 1}] for {t} frames")

    @property
    def num_frames(self) -> int:
        return self.frames.shape[0]
