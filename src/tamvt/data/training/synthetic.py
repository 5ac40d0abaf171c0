"""The synthetic training set: ``epoch_size`` freshly generated videos per epoch, one window of each.

Item ``i`` of epoch ``e`` is a new video of the generator (:mod:`tamvt.data.synthetic`), seeded by
``derive_seed(seed, e * epoch_size + i)``, with its spec cycling through a generator suite; its window
follows the rule of :class:`~tamvt.data.training.windows.WindowDataset` (:func:`choose_window`; every
frame is annotated, and the start is drawn by :func:`uniform_present_start`) and gets the same
augmentation. A sample depends only on ``(seed, epoch, index)``, so a resumed run sees the same data.
Only the masks of the whole video and the frames of the window are rendered.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import numpy as np

from tamvt.data.training.batch import TrainingSample
from tamvt.data.training.transforms import WindowAugment
from tamvt.data.training.windows import WindowSampling, choose_window, make_sample, uniform_present_start
from tamvt.errors import TamvtError

_VOID = 255


class FrameLookup(Protocol):
    """``frames[t]``: a list of frames, or frames rendered when asked for."""

    def __getitem__(self, t: int, /) -> np.ndarray: ...


def sample_window(
    frames: FrameLookup,
    masks: np.ndarray,
    rng: np.random.Generator,
    *,
    length: int,
    num_memory: int,
    augment: WindowAugment | None,
    reverse_prob: float,
    max_skip: int,
    name: str,
) -> TrainingSample | None:
    """One training window of a fully annotated video: ``frames[t]`` ``(H, W, 3)`` uint8 (only the window's
    are read), ``masks (T, H, W)`` uint8 ids (255 = void). The object is drawn among those of frame 0;
    None when frame 0 shows none."""
    masks = np.asarray(masks)
    ids = [int(i) for i in np.unique(masks[0]) if i not in (0, _VOID)]
    if not ids:
        return None
    obj = ids[int(rng.integers(len(ids)))]

    def present(t: int) -> bool:
        return bool((masks[t] == obj).any())

    # the object is in frame 0, so its available frames are all frames: positions are frame indices
    indices, reversed_ = choose_window(
        rng, masks.shape[0], length, present, uniform_present_start, reverse_prob, max_skip
    )
    window = [np.asarray(frames[i]) for i in indices]
    labels = [masks[i] for i in indices]
    return make_sample(
        window, labels, obj, _VOID, num_memory, augment, rng, video=name, frame_indices=indices, reversed_=reversed_
    )


class _RenderedFrames:
    """``frames[t]`` of a synthetic video, rendered when asked for (only the window's frames are drawn)."""

    def __init__(self, lazy) -> None:
        self.lazy = lazy

    def __getitem__(self, t: int) -> np.ndarray:
        return self.lazy.render(int(t))[0]


class SyntheticWindows(WindowSampling):
    """``epoch_size`` synthetic training windows per epoch (module docstring).

    Args:
        suite: generator preset (``tamvt.data.synthetic.PRESETS``), e.g. ``train``.
        epoch_size: items per epoch.
        length: frames per window (memory + query frames).
        num_memory: leading frames given with ground truth.
        augment: window-consistent augmentation, or None (frames at their original size).
        reverse_prob: probability of time-reversing a window.
        seed: base seed; see :meth:`set_epoch`.
        size, video_length: override the suite's frame size ``(H, W)`` / video length (None = keep).
        fixed_video: when set, every item uses this one video seed (overfitting tests).
        max_skip: largest frame stride of a window (1 = consecutive frames).
        lost_share: share of the suite's videos with lost-and-found events (hide / exit / decoy;
            ``preset_suite``); None = the preset's (``train-lost``: half).
    """

    def __init__(
        self,
        suite: str = "train",
        epoch_size: int = 1000,
        length: int = 12,
        num_memory: int = 2,
        augment: WindowAugment | None = None,
        reverse_prob: float = 0.0,
        seed: int = 0,
        size: tuple[int, int] | None = None,
        video_length: int | None = None,
        fixed_video: int | None = None,
        max_skip: int = 1,
        lost_share: float | None = None,
    ) -> None:
        from tamvt.data.synthetic import preset_suite

        super().__init__(length, num_memory, augment, reverse_prob, seed, max_skip)
        self.specs = preset_suite(suite, seed=seed, lost_share=lost_share)
        changes: dict[str, Any] = {k: v for k, v in (("size", size), ("length", video_length)) if v is not None}
        if changes:
            self.specs = [dataclasses.replace(s, **changes) for s in self.specs]
        self.epoch_size = epoch_size
        self.fixed_video = fixed_video

    def __len__(self) -> int:
        return self.epoch_size

    def video_config(self, index: int):
        """The generator config (``tamvt.data.synthetic.SynthConfig``) of item ``index`` this epoch."""
        from tamvt.data.synthetic import derive_seed

        g = self.epoch * self.epoch_size + index if self.fixed_video is None else 0
        seed = derive_seed(self.seed, g) if self.fixed_video is None else self.fixed_video
        return dataclasses.replace(self.specs[g % len(self.specs)], seed=seed, name=f"synthetic-{seed}")

    def __getitem__(self, index: int) -> TrainingSample:
        from tamvt.data.synthetic import iter_video, render_frame

        rng = np.random.default_rng([self.seed, self.epoch, index, 0x5EED])
        for attempt in range(8):  # a video whose first frame shows no target: draw the next seed
            cfg = self.video_config(index)
            if attempt:
                cfg = dataclasses.replace(cfg, seed=cfg.seed + attempt)
            lazy = iter_video(cfg)
            masks = np.stack([render_frame(lazy.plan, t, with_frame=False)[1] for t in range(len(lazy))])
            sample = sample_window(
                _RenderedFrames(lazy),
                masks,
                rng,
                length=self.length,
                num_memory=self.num_memory,
                augment=self.augment,
                reverse_prob=self.reverse_prob,
                max_skip=self.max_skip,
                name=cfg.name,
            )
            if sample is not None:
                return sample
        raise TamvtError(f"synthetic video {cfg.name}: no target visible in the first frame after 8 seeds")
