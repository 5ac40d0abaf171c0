"""Training data for the trainer: one map-style dataset per source and a resumable sharded order.

Every source is indexable, and a sample depends only on ``(seed, epoch, index)``, so the data
position of a run is just ``(epoch, batches consumed in the epoch)``: a resumed run rebuilds the
epoch's order and skips what was consumed, without replaying the skipped samples.

* real videos: :class:`tamvt.data.training.windows.WindowDataset` over ``read_dataset(source, root, split)``;
* ``static``: :class:`tamvt.data.training.static_pseudo.StaticPseudoVideoDataset` (``root/images`` + ``root/masks``);
* ``synthetic``: :class:`tamvt.data.training.synthetic.SyntheticWindows`, ``epoch_size`` fresh generated
  videos per epoch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import Dataset

from tamvt.data.training.synthetic import SyntheticWindows
from tamvt.data.training.transforms import WindowAugment
from tamvt.errors import TamvtError


def build_augment(
    crop_size: tuple[int, int],
    scale_range: tuple[float, float],
    hflip_prob: float,
    jitter: tuple[float, float, float, float],
) -> WindowAugment:
    # the config holds lists after YAML; the augmentation wants tuples
    return WindowAugment(
        out_size=(crop_size[0], crop_size[1]),
        scale_range=(scale_range[0], scale_range[1]),
        hflip_prob=hflip_prob,
        jitter=(jitter[0], jitter[1], jitter[2], jitter[3]),
    )


def build_train_dataset(d: Any, seed: int) -> Dataset:
    """The training dataset described by ``d`` (a :class:`tamvt.train.config.DataConfig`)."""
    augment = build_augment(d.crop_size, d.scale_range, d.hflip_prob, d.jitter)
    if d.source == "synthetic":
        return SyntheticWindows(
            d.synthetic_preset,
            d.epoch_size,
            d.window_length,
            d.num_memory,
            augment,
            d.reverse_prob,
            seed,
            d.synthetic_size,
            d.synthetic_frames,
            d.synthetic_fixed_video,
            d.max_skip,
            d.synthetic_lost_share,
            d.synthetic_lost_focus,
        )
    if d.root is None:
        raise TamvtError(f"data.root is required for data.source={d.source}")
    if d.source == "static":
        from tamvt.data.training.static_pseudo import StaticPseudoVideoDataset

        return StaticPseudoVideoDataset.from_root(
            d.root,
            out_size=tuple(d.crop_size),
            num_frames=d.window_length,
            num_memory=d.num_memory,
            seed=seed,
            hflip_prob=d.hflip_prob,
            jitter=tuple(d.jitter),
            paste_prob=d.static_paste_prob,
        )
    from tamvt.data.registry import read_dataset
    from tamvt.data.training.windows import WindowDataset

    sequences = read_dataset(d.source, d.root, d.split)
    ds = WindowDataset(
        sequences, d.window_length, d.num_memory, augment, d.reverse_prob, seed, d.short_videos, max_skip=d.max_skip
    )
    if len(ds) == 0:
        raise TamvtError(f"{d.root}: split {d.split!r} has no usable (video, object) pair for training")
    return ds


class ShardedOrder:
    """The sample order of one epoch for one process: a permutation of the dataset seeded by
    ``(seed, epoch)`` (identical on all ranks), padded to a multiple of ``world_size`` by wrapping,
    then every ``world_size``-th index from ``rank`` on (as ``DistributedSampler``), skipping the
    first ``start`` (already consumed before a resume)."""

    def __init__(
        self, size: int, rank: int, world_size: int, seed: int, epoch: int, start: int = 0, shuffle: bool = True
    ) -> None:
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
