"""Static-image pseudo-videos: shapes, mask formats, occluding paste, determinism, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tamvt.data.palette import write_index_png
from tamvt.data.training.static_pseudo import StaticPseudoVideoDataset, read_object_mask
from tamvt.errors import InputError

RED, BLUE = (220, 20, 20), (20, 20, 220)


def _folder(root: Path) -> Path:
    """Three images: 'a' red with two index objects (1, 2) and VOC-style void, 'b' blue with a big
    binary 0/255 object, 'c' (jpg) green with an anti-aliased-free binary mask; plus an image
    without a mask."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    a = np.full((60, 80, 3), RED, np.uint8)
    ma = np.zeros((60, 80), np.uint8)
    ma[15:45, 20:60] = 1
    ma[50:58, 5:15] = 2
    ma[14, 20:60] = 255  # void border as in VOC
    Image.fromarray(a).save(root / "images" / "a.png")
    write_index_png(root / "masks" / "a.png", ma)
    b = np.full((50, 50, 3), BLUE, np.uint8)
    mb = np.zeros((50, 50), np.uint8)
    mb[5:45, 5:45] = 255
    Image.fromarray(b).save(root / "images" / "b.png")
    Image.fromarray(mb).save(root / "masks" / "b.png")  # 8-bit gray
    c = np.full((40, 40, 3), (20, 200, 20), np.uint8)
    mc = np.zeros((40, 40), np.uint8)
    mc[10:30, 10:30] = 255
    Image.fromarray(c).save(root / "images" / "c.jpg")
    Image.fromarray(mc).save(root / "masks" / "c.png")
    Image.fromarray(c).save(root / "images" / "no_mask.jpg")
    return root


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return _folder(tmp_path_factory.mktemp("static"))


def test_mask_formats(root):
    assert set(np.unique(read_object_mask(root / "masks" / "b.png"))) == {0, 1}  # 0/255 -> binary
    assert set(np.unique(read_object_mask(root / "masks" / "a.png"))) == {0, 1, 2, 255}  # index + void
    assert set(np.unique(read_object_mask(root / "masks" / "a.png", "binary"))) == {0, 1}


def test_pairs_and_shapes(root):
    ds = StaticPseudoVideoDataset.from_root(root, out_size=(32, 48))
    assert [p[0].name for p in ds.pairs] == ["a.png", "b.png", "c.jpg"]  # the image without mask is left out
    for epoch in range(4):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            s = ds[i]
            assert s.frames.shape == (6, 3, 32, 48) and s.frames.dtype == torch.float32
            assert s.masks.shape == (6, 32, 48) and s.masks.dtype == torch.uint8
            assert s.void.shape == (6, 32, 48) and s.void.dtype == torch.bool
            assert s.num_memory == 2 and s.frame_indices == (i,) * 6
            assert set(np.unique(s.masks.numpy())) <= {0, 1}
            assert s.masks[0].any()  # the target is visible in the first memory frame
            assert s.object_id in ((1, 2) if i == 0 else (1,))


def test_frames_move_per_frame(root):
    ds = StaticPseudoVideoDataset.from_root(root, out_size=(32, 48), paste_prob=0.0, hflip_prob=0.0)
    s = ds[1]
    different = [not torch.equal(s.masks[0], s.masks[t]) for t in range(1, 6)]
    assert all(different)  # every later frame has its own affine


def test_void_is_carried(root):
    ds = StaticPseudoVideoDataset.from_root(
        root, out_size=(60, 80), crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), paste_prob=0.0, hflip_prob=0.0
    )
    s = ds[0]
    assert s.void[0].any() and not (s.void & s.masks.bool()).any()


def test_pasted_objects_occlude_the_target(root):
    kw = dict(out_size=(40, 40), jitter=(0, 0, 0, 0), seed=4)
    with_paste = StaticPseudoVideoDataset.from_root(root, paste_prob=1.0, **kw)
    without = StaticPseudoVideoDataset.from_root(root, paste_prob=0.0, **kw)
    occluded_somewhere = False
    for epoch in range(5):
        with_paste.set_epoch(epoch)
        without.set_epoch(epoch)
        p, q = with_paste[0], without[0]  # target from red image 'a'; paste from 'b' or 'c'
        assert p.object_id == q.object_id
        assert not (p.masks.bool() & ~q.masks.bool()).any()  # paste only removes target pixels
        lost = q.masks.bool() & ~p.masks.bool()
        if lost.any():
            occluded_somewhere = True
            red = torch.tensor(
                [(c / 255 - m) / s for c, m, s in zip(RED, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), strict=True)]
            )
            lost_pixels = p.frames.permute(0, 2, 3, 1)[lost]  # (N, 3)
            assert (lost_pixels - red).abs().max(1).values.min() > 0.5  # not red any more: pasted content
        assert p.masks[0].any()  # never fully hidden in frame 0
    assert occluded_somewhere


def test_deterministic(root):
    a = StaticPseudoVideoDataset.from_root(root, out_size=(24, 24), seed=9)
    b = StaticPseudoVideoDataset.from_root(root, out_size=(24, 24), seed=9)
    a.set_epoch(3)
    b.set_epoch(3)
    assert torch.equal(a[2].frames, b[2].frames) and torch.equal(a[0].masks, b[0].masks)
    b.set_epoch(4)
    assert not torch.equal(a[0].frames, b[0].frames)


def test_bad_input(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(tmp_path / "images" / "x.png")
    with pytest.raises(InputError, match="no image with a mask"):
        StaticPseudoVideoDataset.from_root(tmp_path)
    write_index_png(tmp_path / "masks" / "x.png", np.ones((12, 10), np.uint8))
    with pytest.raises(InputError, match="x.png: mask size 10x12 != image size 10x10"):
        StaticPseudoVideoDataset.from_root(tmp_path)[0]
    write_index_png(tmp_path / "masks" / "x.png", np.zeros((10, 10), np.uint8))
    with pytest.raises(InputError, match="no object"):
        StaticPseudoVideoDataset.from_root(tmp_path)[0]
    with pytest.raises(InputError, match="mask folder not found"):
        StaticPseudoVideoDataset(tmp_path / "images", tmp_path / "nope")
