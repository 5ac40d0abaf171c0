"""Training windows over video sequences and over generated synthetic videos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.batch import TrainingBatch, collate
from PIL import Image
from torch.utils.data import DataLoader

from tamvt.data.palette import write_index_png
from tamvt.data.sequence import VideoSequence
from tamvt.data.training.synthetic import SyntheticWindows
from tamvt.data.training.transforms import WindowAugment, normalize
from tamvt.data.training.windows import WindowDataset, draw_stride, pingpong

H, W = 36, 48
N_FRAMES = 30
ABSENT = range(10, 16)  # object 1 is absent (but annotated) in these frames


def _frame_value(i: int) -> int:
    return 5 * i + 10  # the frame index, readable back from the pixels


def _make_video(root: Path, name: str = "vid", n_frames: int = N_FRAMES, every: int = 2) -> VideoSequence:
    """Frames with constant value 5i+10; masks on every ``every``-th frame (VOST-like 5 fps over
    10 fps frames). Object 1 (moving square) everywhere except ABSENT; object 2 from frame 8 on;
    a void band in the top rows."""
    (root / name / "img").mkdir(parents=True)
    (root / name / "ann").mkdir(parents=True)
    frame_paths, mask_paths = [], {}
    for i in range(n_frames):
        path = root / name / "img" / f"{i:05d}.png"
        Image.fromarray(np.full((H, W, 3), _frame_value(i), np.uint8)).save(path)
        frame_paths.append(path)
        if i % every == 0:
            m = np.zeros((H, W), np.uint8)
            if i not in ABSENT:
                m[10:20, 5 + i % 20 : 13 + i % 20] = 1
            if i >= 8:
                m[25:30, 30:40] = 2
            m[:2] = 255
            mask_paths[i] = root / name / "ann" / f"{i:05d}.png"
            write_index_png(mask_paths[i], m)
    return VideoSequence(
        name=name,
        frame_names=tuple(f"{i:05d}" for i in range(n_frames)),
        frame_paths=tuple(frame_paths),
        video_path=None,
        mask_paths=mask_paths,
        objects={1: 0, 2: 8},
        size=(H, W),
    )


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> VideoSequence:
    return _make_video(tmp_path_factory.mktemp("win"))


def _frame_ids(sample) -> list[int]:
    """Frame index of each sample frame, from the (un-normalised) constant pixel value."""
    mean, std = 0.485, 0.229
    v = (sample.frames[:, 0].mean((1, 2)) * std + mean) * 255
    return [int(round((x - 10) / 5)) for x in v.tolist()]


def _samples(ds: WindowDataset, epochs: int):
    """(object id, sample) for every item of ``epochs`` epochs."""
    for epoch in range(epochs):
        ds.set_epoch(epoch)
        for index, (_, obj) in enumerate(ds.items):
            yield obj, ds[index]


def _gaps(indices) -> set[int]:
    """The differences between consecutive frame indices of a window."""
    idx = list(indices)
    return {b - a for a, b in zip(idx, idx[1:], strict=False)}


def test_pingpong():
    assert pingpong(4, 9) == [0, 1, 2, 3, 2, 1, 0, 1, 2]
    assert pingpong(1, 3) == [0, 0, 0]


def test_items_are_object_wise(video):
    ds = WindowDataset([video], length=5)
    assert ds.items == [(0, 1), (0, 2)]
    assert len(ds) == 2


def test_windows_are_consecutive_annotated_frames_starting_where_the_object_is(video):
    ds = WindowDataset([video], length=5, num_memory=2, seed=3)
    starts = set()
    for obj, s in _samples(ds, 25):
        idx = list(s.frame_indices)
        assert idx == list(range(idx[0], idx[0] + 10, 2))  # 5 consecutive annotated frames
        assert idx[0] >= video.objects[obj]
        assert (video.read_mask(idx[0]) == obj).any()  # the object is in the first frame
        assert _frame_ids(s) == idx  # the pixels are those frames, in that order
        assert s.masks.shape == (5, H, W) and s.masks.dtype == torch.uint8
        assert s.frames.shape == (5, 3, H, W) and s.frames.dtype == torch.float32
        assert s.num_memory == 2 and s.object_id == obj and not s.reversed
        starts.add((obj, idx[0]))
    assert not any(o == 1 and f in ABSENT for o, f in starts)
    assert len({f for o, f in starts if o == 1}) > 3  # starts do vary


def test_masks_are_binary_for_the_object_and_void_separate(video):
    s = WindowDataset([video], length=5)[1]  # object 2
    lab = np.stack([video.read_mask(i) for i in s.frame_indices])
    assert np.array_equal(s.masks.numpy(), (lab == 2).astype(np.uint8))
    assert np.array_equal(s.void.numpy(), lab == 255)
    assert set(np.unique(s.masks.numpy())) <= {0, 1}


def test_deterministic_for_seed_epoch_index(video):
    aug = WindowAugment(out_size=(24, 32), scale_range=(1.0, 1.5))
    a = WindowDataset([video], length=4, augment=aug, reverse_prob=0.5, seed=11)
    b = WindowDataset([video], length=4, augment=aug, reverse_prob=0.5, seed=11)
    a.set_epoch(2)
    b.set_epoch(2)
    for i in (1, 0):  # order does not matter
        sa, sb = a[i], b[i]
        assert sa.frame_indices == sb.frame_indices and torch.equal(sa.frames, sb.frames)
        assert torch.equal(sa.masks, sb.masks)
    draws = set()
    for epoch in range(6):
        a.set_epoch(epoch)
        draws.add((a[0].frame_indices, a[0].frames.sum().item()))
    assert len(draws) > 1


def test_reversal_really_happens_at_p1_and_never_at_p0(video):
    rev = WindowDataset([video], length=4, reverse_prob=1.0, seed=5)
    fwd = WindowDataset([video], length=4, reverse_prob=0.0, seed=5)
    for epoch in range(15):
        rev.set_epoch(epoch)
        fwd.set_epoch(epoch)
        for index, (_, obj) in enumerate(rev.items):
            r, f = rev[index], fwd[index]
            ids = _frame_ids(r)
            assert r.reversed and ids == sorted(ids, reverse=True) and ids == list(r.frame_indices)
            assert (video.read_mask(ids[0]) == obj).any()  # reversed windows also start on the object
            assert ids[-1] >= video.objects[obj]
            fids = _frame_ids(f)
            assert not f.reversed and fids == sorted(fids)


def test_reversal_falls_back_to_forward_when_object_is_gone_at_the_end(tmp_path):
    seq = _make_video(tmp_path, n_frames=14)  # object 1 absent in frames 10, 12: reversed starts need 8 or before
    ds = WindowDataset([seq], length=6, reverse_prob=1.0)
    s = ds[0]  # object 1: positions 0..1 of the reversed list are frames 12, 10 (absent) -> none valid
    assert not s.reversed and list(s.frame_indices) in ([0, 2, 4, 6, 8, 10], [2, 4, 6, 8, 10, 12])


def test_crop_keeps_the_object_in_the_first_frame(video):
    aug = WindowAugment(out_size=(16, 16), scale_range=(1.5, 3.0), hflip_prob=0.5)
    ds = WindowDataset([video], length=4, augment=aug, reverse_prob=0.5, seed=1)
    for epoch in range(10):
        ds.set_epoch(epoch)
        for index in range(len(ds)):
            s = ds[index]
            assert s.frames.shape == (4, 3, 16, 16)
            assert s.masks[0].any()


def test_short_videos_pingpong_or_skip(tmp_path):
    seq = _make_video(tmp_path, n_frames=8)  # annotated 0, 2, 4, 6; object 2 never (starts at 8)
    seq = VideoSequence(**{**seq.__dict__, "objects": {1: 0}})
    s = WindowDataset([seq], length=7)[0]
    assert list(s.frame_indices) == [0, 2, 4, 6, 4, 2, 0]
    assert _frame_ids(s) == [0, 2, 4, 6, 4, 2, 0]
    assert len(WindowDataset([seq], length=7, short_videos="skip")) == 0
    assert len(WindowDataset([seq], length=4, short_videos="skip")) == 1


def test_dataloader_and_collate(video):
    aug = WindowAugment(out_size=(16, 24))
    ds = WindowDataset([video], length=4, augment=aug)
    batch = next(iter(DataLoader(ds, batch_size=2, collate_fn=collate)))
    assert isinstance(batch, TrainingBatch)
    assert batch.frames.shape == (2, 4, 3, 16, 24) and batch.masks.shape == (2, 4, 16, 24)
    assert batch.object_ids == (1, 2) and batch.num_memory == 2


# --------------------------------------------------------------------------- synthetic windows


def _synthetic(**kwargs) -> SyntheticWindows:
    """Windows of small generated videos (48x64, the ``tiny`` suite's events)."""
    return SyntheticWindows("tiny", size=(48, 64), **kwargs)


def _rendered(ds: SyntheticWindows, index: int, s) -> torch.Tensor:
    """The normalised frames ``s.frame_indices`` of item ``index``'s video, rendered again."""
    from tamvt.data.synthetic import iter_video

    cfg = ds.video_config(index)
    assert s.video == cfg.name
    lazy = iter_video(cfg)
    return normalize(np.stack([lazy.render(i)[0] for i in s.frame_indices]))


def test_synthetic_windows_samples_and_seeding():
    ds = _synthetic(epoch_size=4, length=6, num_memory=2, seed=7, video_length=16)
    samples = [ds[i] for i in range(4)]
    for i, s in enumerate(samples):
        assert s.frames.shape == (6, 3, 48, 64) and s.masks[0].any() and s.num_memory == 2
        assert list(s.frame_indices) == list(range(s.frame_indices[0], s.frame_indices[0] + 6))
        assert torch.equal(s.frames, _rendered(ds, i, s))  # the window's frames, in order
    assert len({s.video for s in samples}) == 4  # a fresh video per item
    again = ds[0]
    assert torch.equal(again.frames, samples[0].frames) and torch.equal(again.masks, samples[0].masks)  # deterministic
    ds.set_epoch(1)
    assert ds[0].video not in {s.video for s in samples}  # and per epoch
    rev = _synthetic(epoch_size=1, length=14, video_length=12, reverse_prob=1.0)
    s = rev[0]
    assert s.reversed and list(s.frame_indices) == [11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2]


def test_synthetic_windows_do_not_depend_on_workers():
    ds = _synthetic(epoch_size=4, length=6, seed=3, video_length=12)
    loaded = list(DataLoader(ds, batch_size=None, num_workers=2))
    for i, s in enumerate(loaded):
        assert torch.equal(s.frames, ds[i].frames) and s.video == ds[i].video


def test_synthetic_windows_with_augmentation():
    aug = WindowAugment(out_size=(32, 48))
    ds = _synthetic(epoch_size=2, video_length=14, length=12, augment=aug, reverse_prob=1.0, seed=2)
    for i in range(2):
        s = ds[i]
        assert s.frames.shape == (12, 3, 32, 48) and s.masks.shape == (12, 32, 48)
        assert s.masks[0].any() and s.num_memory == 2
        idx = list(s.frame_indices)
        assert idx == (list(range(idx[0], idx[0] - 12, -1)) if s.reversed else list(range(idx[0], idx[0] + 12)))


def test_draw_stride_fits_the_window_and_draws_nothing_at_max_skip_1():
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    assert draw_stride(rng, 1, 100, 12) == 1
    assert rng.bit_generator.state == state  # consecutive frames: the random stream is untouched
    strides = {draw_stride(rng, 3, 100, 12) for _ in range(200)}
    assert strides == {1, 2, 3}
    assert {draw_stride(rng, 3, 23, 12) for _ in range(50)} == {1, 2}  # 3 would need 34 frames
    assert {draw_stride(rng, 5, 8, 12) for _ in range(20)} == {1}  # shorter than a window: pingpong


def test_frame_skip_windows(video):
    """A window takes every s-th annotated frame (s <= max_skip, one s per window), and still starts
    where the object is; s varies between windows."""
    ds = WindowDataset([video], length=5, num_memory=2, seed=3, max_skip=3, reverse_prob=0.5)
    steps = set()
    for obj, s in _samples(ds, 30):
        idx = list(s.frame_indices)
        gaps = _gaps(idx)
        assert len(gaps) == 1  # one stride per window
        gap = gaps.pop()
        assert abs(gap) in (2, 4, 6)  # annotations on every 2nd frame: stride 1..3 of them
        assert (video.read_mask(idx[0]) == obj).any() and min(idx) >= video.objects[obj]
        assert _frame_ids(s) == idx
        steps.add(abs(gap))
    assert steps == {2, 4, 6}


def test_synthetic_windows_frame_skip():
    ds = _synthetic(epoch_size=40, length=6, seed=7, video_length=20, max_skip=3)
    strides = set()
    for i in range(len(ds)):
        s = ds[i]
        idx = list(s.frame_indices)
        gaps = _gaps(idx)
        assert len(gaps) == 1 and 1 <= gaps.pop() <= 3 and min(idx) >= 0 and max(idx) < 20
        strides.add(idx[1] - idx[0])
    assert strides == {1, 2, 3}
