"""The synthetic training set: ``epoch_size`` freshly generated videos per epoch, one window of each.

Item ``i`` of epoch ``e`` is a new video of the generator (:mod:`tamvt.data.synthetic`), seeded by
``derive_seed(seed, e * epoch_size + i)``, with its spec cycling through a generator suite; its window
follows the rule of :class:`~tamvt.data.training.windows.WindowDataset` (:func:`choose_window`; every
frame is annotated, and the start is drawn by :func:`uniform_present_start`) and gets the same
augmentation. A sample depends only on ``(seed, epoch, index)``, so a resumed run sees the same data.
Only the masks of the whole video and the frames of the window are rendered.

Lost focus (``lost_focus`` > 0): a video whose target goes away and comes back (a ``hide`` or ``exit``
lost event) gives, with that probability, a window on that target around its absence instead
(:func:`absence_window`): memory frames that show it before it goes, at least one frame without it,
and at least ``AFTER_FRAMES`` frames after it is back, so the window asks the model to find it again.
Under the usual rule most windows show no absence at all, and long absences with far returns are rare.
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
AFTER_FRAMES = 3  # an absence window shows the target again in at least this many frames after the absence
GONE_EVENTS = ("hide", "exit")  # the lost events whose target goes away and comes back


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
    return window_sample(frames, masks, obj, indices, reversed_, rng, num_memory=num_memory, augment=augment, name=name)


def window_sample(
    frames: FrameLookup,
    masks: np.ndarray,
    obj: int,
    indices: list[int],
    reversed_: bool,
    rng: np.random.Generator,
    *,
    num_memory: int,
    augment: WindowAugment | None,
    name: str,
) -> TrainingSample:
    """The sample of object ``obj`` over frames ``indices`` (in the order the model sees them): only those
    frames are read."""
    return make_sample(
        [np.asarray(frames[i]) for i in indices],
        [masks[i] for i in indices],
        obj,
        _VOID,
        num_memory,
        augment,
        rng,
        video=name,
        frame_indices=indices,
        reversed_=reversed_,
    )


def absence_window(
    rng: np.random.Generator,
    shown: np.ndarray,
    gone: tuple[int, int],
    length: int,
    num_memory: int,
    reverse_prob: float,
    max_skip: int,
) -> tuple[list[int], bool] | None:
    """A window of ``length`` frames around a target's absence, or None when none fits.

    ``shown (T,)`` bool: whether the target has a pixel in each frame; ``gone``: frames ``(first, last)``
    where it has none (the run is widened to every frame around it without the target). The window takes
    every ``s``-th frame (``s`` uniform among the strides in ``[1, max_skip]`` that fit), its
    ``num_memory`` memory frames show the target before the run, at least one frame falls in the run and
    at least ``AFTER_FRAMES`` after it; the start is uniform among those that fit. With ``reverse_prob``
    the window runs backwards in time (memory after the run), when one fits that way.
    Returns: (frame indices in the order the model sees them, reversed or not).
    """
    shown = np.asarray(shown, bool)
    n = len(shown)
    a, b = gone
    if not (0 <= a <= b < n) or shown[a : b + 1].any():
        raise ValueError(f"gone {gone} must be frames of the video where the target does not show")
    while a > 0 and not shown[a - 1]:
        a -= 1
    while b < n - 1 and not shown[b + 1]:
        b += 1
    after = min(AFTER_FRAMES, length - num_memory - 1)
    if after < 1:
        return None
    reverse = bool(rng.random() < reverse_prob)
    for backwards in (True, False) if reverse else (False,):
        order = shown[::-1] if backwards else shown
        lo, hi = (n - 1 - b, n - 1 - a) if backwards else (a, b)
        fits: dict[int, list[int]] = {}
        for s in range(1, max(1, max_skip) + 1):
            span = (length - 1) * s
            starts = [
                i
                for i in range(0, n - span)
                if i + (num_memory - 1) * s < lo
                and order[i : i + num_memory * s : s].all()
                and i + (length - after) * s > hi
                and any(lo <= i + k * s <= hi for k in range(num_memory, length))
            ]
            if starts:
                fits[s] = starts
        if fits:
            strides = sorted(fits)
            s = strides[int(rng.integers(len(strides)))]
            i = fits[s][int(rng.integers(len(fits[s])))]
            window = list(range(i, i + length * s, s))
            return ([n - 1 - t for t in window], True) if backwards else (window, False)
    return None


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
        lost_focus: probability that a video with a hide / exit event gives a window around that
            target's absence (module docstring); 0 = the usual rule only.
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
        lost_focus: float = 0.0,
    ) -> None:
        from tamvt.data.synthetic import preset_suite

        super().__init__(length, num_memory, augment, reverse_prob, seed, max_skip)
        self.specs = preset_suite(suite, seed=seed, lost_share=lost_share)
        changes: dict[str, Any] = {k: v for k, v in (("size", size), ("length", video_length)) if v is not None}
        if changes:
            self.specs = [dataclasses.replace(s, **changes) for s in self.specs]
        self.epoch_size = epoch_size
        self.fixed_video = fixed_video
        if not 0.0 <= lost_focus <= 1.0:
            raise ValueError(f"lost_focus must be in [0, 1], got {lost_focus}")
        self.lost_focus = lost_focus

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
            sample = self._absence_sample(lazy, masks, cfg.name, index, attempt) if self.lost_focus else None
            if sample is not None:
                return sample
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

    def _absence_sample(self, lazy, masks: np.ndarray, name: str, index: int, attempt: int) -> TrainingSample | None:
        """The window around a hide / exit event's absence (with probability ``lost_focus``), or None.
        Draws from a generator of its own, so the usual windows stay those of ``lost_focus=0``."""
        events = [e for e in lazy.plan.events if e.type in GONE_EVENTS]
        if not events:
            return None
        rng = np.random.default_rng([self.seed, self.epoch, index, attempt, 0x1057])
        if rng.random() >= self.lost_focus:
            return None
        event = events[int(rng.integers(len(events)))]
        shown = (masks == event.object).reshape(len(masks), -1).any(1)
        if shown[event.start : event.end + 1].any():
            return None
        chosen = absence_window(
            rng, shown, (event.start, event.end), self.length, self.num_memory, self.reverse_prob, self.max_skip
        )
        if chosen is None:
            return None
        indices, reversed_ = chosen
        return window_sample(
            _RenderedFrames(lazy),
            masks,
            event.object,
            indices,
            reversed_,
            rng,
            num_memory=self.num_memory,
            augment=self.augment,
            name=name,
        )
