"""Training data for the trainer: one map-style dataset per source and a resumable sharded order.

Every source is indexable, and a sample depends only on ``(seed, epoch, index)``, so the data
position of a run is just ``(epoch, batches consumed in the epoch)``: a resumed run rebuilds the
epoch's order and skips what was consumed, without replaying the skipped samples.

* real videos: :class:`tamvt.data.training.windows.WindowDataset` over ``read_dataset(source, root, split)``;
* ``static``: :class:`tamvt.data.training.static_pseudo.StaticPseudoVideoDataset` (``root/images`` + ``root/masks``);
* ``synthetic``: :class:`SyntheticWindows`, ``epoch_size`` fresh generated videos per epoch.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import Dataset

from tamvt.data.training.batch import TrainingSample
from tamvt.data.training.transforms import WindowAugment
from tamvt.errors import TamvtError


class _LazyFrames:
    """``frames[t]`` of a synthetic video rendered on demand (only the window's frames are drawn)."""

    def __init__(self, lazy: Any) -> None:
        self.lazy = lazy

    def __getitem__(self, t: int) -> np.ndarray:
        return self.lazy.render(int(t))[0]


@dataclasses.dataclass
class _MaskedVideo:
    frames: _LazyFrames
    masks: np.ndarray  # (T, H, W) uint8


class SyntheticWindows(Dataset):
    """``epoch_size`` synthetic training windows per epoch; item ``i`` of epoch ``e`` is a fresh video
    (seed ``derive_seed(seed, e * epoch_size + i)``, spec cycling through the generator suite
    ``suite``) cut and augmented like :class:`~tamvt.data.training.windows.SyntheticWindowStream`.

    Only the masks of the whole video and the frames of the window are rendered.

    Args:
        suite: generator preset (``tamvt.data.synthetic.PRESETS``), e.g. ``train``.
        epoch_size: items per epoch.
        size, length: override the suite's frame size ``(H, W)`` / video length (None = keep).
        fixed_video: when set, every item uses this one video seed (overfitting tests).
        Others as in :class:`~tamvt.data.training.windows.SyntheticWindowStream`.
    """

    def __init__(self, suite: str = "train", epoch_size: int = 1000, length: int = 12, num_memory: int = 2,
                 augment: WindowAugment | None = None, reverse_prob: float = 0.0, seed: int = 0,
                 size: tuple[int, int] | None = None, video_length: int | None = None,
                 fixed_video: int | None = None, max_skip: int = 1) -> None:
        from tamvt.data.synthetic import preset_suite
        from tamvt.data.training.windows import SyntheticWindowStream

        self.specs = preset_suite(suite, seed=seed)
        changes = {k: v for k, v in (("size", size), ("length", video_length)) if v is not None}
        if changes:
            self.specs = [dataclasses.replace(s, **changes) for s in self.specs]
        self.epoch_size = epoch_size
        self.seed = seed
        self.epoch = 0
        self.fixed_video = fixed_video
        self.cutter = SyntheticWindowStream(self.specs[0], length=length, num_memory=num_memory, augment=augment,
                                            reverse_prob=reverse_prob, seed=seed, rank=0, max_skip=max_skip)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.epoch_size

    def video_config(self, index: int) -> Any:
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
            sample = self.cutter.sample_from_video(_MaskedVideo(_LazyFrames(lazy), masks), rng, name=cfg.name)
            if sample is not None:
                return sample
        raise TamvtError(f"synthetic video {cfg.name}: no target visible in the first frame after 8 seeds")


def build_augment(crop_size: tuple[int, int], scale_range: tuple[float, float], hflip_prob: float,
                  jitter: tuple[float, float, float, float]) -> WindowAugment:
    return WindowAugment(out_size=tuple(crop_size), scale_range=tuple(scale_range), hflip_prob=hflip_prob,
                         jitter=tuple(jitter))


def build_train_dataset(d: Any, seed: int) -> Dataset:
    """The training dataset described by ``d`` (a :class:`tamvt.train.config.DataConfig`)."""
    augment = build_augment(d.crop_size, d.scale_range, d.hflip_prob, d.jitter)
    if d.source == "synthetic":
        return SyntheticWindows(d.synthetic_preset, d.epoch_size, d.window_length, d.num_memory, augment,
                                d.reverse_prob, seed, d.synthetic_size, d.synthetic_frames, d.synthetic_fixed_video,
                                d.max_skip)
    if d.root is None:
        raise TamvtError(f"data.root is required for data.source={d.source}")
    if d.source == "static":
        from tamvt.data.training.static_pseudo import StaticPseudoVideoDataset

        return StaticPseudoVideoDataset.from_root(d.root, out_size=tuple(d.crop_size), num_frames=d.window_length,
                                                  num_memory=d.num_memory, seed=seed, hflip_prob=d.hflip_prob,
                                                  jitter=tuple(d.jitter), paste_prob=d.static_paste_prob)
    from tamvt.data.registry import read_dataset
    from tamvt.data.training.windows import WindowDataset

    sequences = read_dataset(d.source, d.root, d.split)
    ds = WindowDataset(sequences, d.window_length, d.num_memory, augment, d.reverse_prob, seed, d.short_videos,
                       max_skip=d.max_skip)
    if len(ds) == 0:
        raise TamvtError(f"{d.root}: split {d.split!r} has no usable (video, object) pair for training")
    return ds


class ShardedOrder:
    """The sample order of one epoch for one process: a permutation of the dataset seeded by
    ``(seed, epoch)`` (identical on all ranks), padded to a multiple of ``world_size`` by wrapping,
    then every ``world_size``-th index from ``rank`` on (as ``DistributedSampler``), skipping the
    first ``start`` (already consumed before a resume)."""

    def __init__(self, size: int, rank: int, world_size: int, seed: int, epoch: int, start: int = 0,
                 shuffle: bool = True) -> None:
        g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        order = torch.randperm(size, generator=g).tolist() if shuffle else list(range(size))
        per_rank = -(-size // world_size)
        order += order[: per_rank * world_size - size]
        self.indices = order[rank::world_size][start:]
        self.per_rank = per_rank

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def steps_per_epoch(dataset_size: int, world_size: int) -> int:
    """Optimizer steps per epoch with one sample per process per step."""
    return -(-dataset_size // world_size)
