"""Window-consistent augmentation and ImageNet normalisation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from tamvt.data.training.transforms import (
    Jitter,
    WindowAugment,
    apply_jitter,
    normalize,
    random_affine_matrix,
    resize_crop_matrix,
    warp,
)

OFFICIAL = Path(__file__).parent / "fixtures" / "official"


def test_normalize_matches_official_preprocessing_bit_exactly():
    with safe_open(OFFICIAL / "tamvt_official_vectors_extra.safetensors", framework="pt") as f:
        raw = f.get_tensor("B.frames_uint8").numpy()
    with safe_open(OFFICIAL / "tamvt_official_vectors.safetensors", framework="pt") as f:
        ref = f.get_tensor("B.frames")
    out = normalize(raw)
    assert out.dtype == torch.float32 and out.shape == ref.shape
    assert torch.equal(out, ref)


def test_normalize_by_hand():
    frame = np.zeros((1, 1, 2, 3), dtype=np.uint8)
    frame[0, 0, 1] = (255, 0, 51)
    out = normalize(frame)
    assert out.shape == (1, 3, 1, 2)
    assert out[0, 0, 0, 1].item() == pytest.approx((1 - 0.485) / 0.229, rel=1e-6)
    assert out[0, 1, 0, 1].item() == pytest.approx(-0.456 / 0.224, rel=1e-6)
    assert out[0, 2, 0, 1].item() == pytest.approx((0.2 - 0.406) / 0.225, rel=1e-6)


def test_resize_crop_matrix_by_hand():
    img = np.arange(12, dtype=np.uint8).reshape(3, 4)
    # scale 1, crop at (1, 1) of size 2x2
    out = warp(img, resize_crop_matrix(1.0, 1, 1), (2, 2), is_mask=True)
    assert out.tolist() == [[5, 6], [9, 10]]
    # flip inside a width-4 output: columns mirrored
    out = warp(img, resize_crop_matrix(1.0, 0, 0, flip_width=4), (3, 4), is_mask=True)
    assert out.tolist() == img[:, ::-1].tolist()
    # x2 nearest upscale agrees with cv2.resize's pixel-centre convention; outside the frame is 0
    out = warp(img, resize_crop_matrix(2.0, 0, 0), (7, 8), is_mask=True)
    assert out[:6].tolist() == np.repeat(np.repeat(img, 2, 0), 2, 1).tolist()
    assert (out[6] == 0).all()


def test_identity_affine_with_zero_ranges():
    rng = np.random.default_rng(0)
    m = random_affine_matrix(rng, (5, 7), degrees=0, translate=0, scale=(1, 1), shear=0)
    np.testing.assert_allclose(m, [[1, 0, 0], [0, 1, 0]], atol=1e-12)


def test_same_transform_for_every_frame_of_a_window():
    rng = np.random.default_rng(1)
    base = rng.integers(0, 256, (60, 90, 3), dtype=np.uint8)
    label = np.zeros((60, 90), np.uint8)
    label[20:30, 40:55] = 1
    aug = WindowAugment(out_size=(32, 48), scale_range=(0.9, 1.6), hflip_prob=0.5)
    for seed in range(5):
        frames, masks = aug([base] * 4, [label] * 4, np.random.default_rng(seed), label == 1)
        assert frames.shape == (4, 32, 48, 3) and masks.shape == (4, 32, 48)
        assert all(np.array_equal(frames[0], f) for f in frames[1:])  # jitter included
        assert all(np.array_equal(masks[0], m) for m in masks[1:])


def test_marker_pixel_lands_at_the_same_place_in_every_frame():
    rng = np.random.default_rng(2)
    frames, labels = [], []
    for _ in range(5):
        f = rng.integers(0, 120, (50, 70, 3), dtype=np.uint8)  # different noise per frame, all dark
        f[4:20, 44:60] = 0  # a black surround, so that interpolation mixes the marker with the same values
        f[10:14, 50:54] = 255  # a white marker, fixed in the source frames
        frames.append(f)
        lab = np.zeros((50, 70), np.uint8)
        lab[10:14, 50:54] = 3
        labels.append(lab)
    aug = WindowAugment(out_size=(40, 40), scale_range=(1.0, 1.3), hflip_prob=0.5, jitter=(0, 0, 0, 0))
    for seed in range(6):
        out_f, out_m = aug(frames, labels, np.random.default_rng(seed), labels[0] == 3)
        where = [tuple(np.argwhere(f.min(axis=2) > 200).mean(0).round(3)) for f in out_f]
        assert len(set(where)) == 1, where  # the marker's bright pixels: same place in every frame
        assert all(np.array_equal(out_m[0], m) for m in out_m[1:])
        assert (out_m[0] == 3).any()  # the focused object stays in view


def test_crop_keeps_the_whole_small_object():
    label = np.zeros((200, 300), np.uint8)
    label[170:190, 5:25] = 1  # small object near the bottom-left corner
    frame = np.zeros((200, 300, 3), np.uint8)
    aug = WindowAugment(out_size=(64, 64), scale_range=(1.0, 2.0), hflip_prob=0.5)
    for seed in range(30):
        _, masks = aug([frame], [label], np.random.default_rng(seed), label == 1)
        assert masks[0].any()
        # the object's box (pixel edges) maps inside the output (pixel edges -0.5 .. 63.5), up to rounding
        m = aug.sample(np.random.default_rng(seed), (200, 300), label == 1).matrix
        corners = np.array([[4.5, 169.5, 1], [24.5, 169.5, 1], [4.5, 189.5, 1], [24.5, 189.5, 1]]) @ m.T
        assert corners.min() >= -0.5 - 1.0 and corners.max() <= 63.5 + 1.0, corners


def test_object_larger_than_crop_fills_the_crop():
    label = np.ones((100, 100), np.uint8)
    aug = WindowAugment(out_size=(20, 20), scale_range=(1.5, 2.0))
    _, masks = aug([np.zeros((100, 100, 3), np.uint8)], [label], np.random.default_rng(0), label == 1)
    assert masks.all()


def test_jitter_identity_and_brightness():
    img = np.full((2, 2, 3), 100, np.uint8)
    assert apply_jitter(img, Jitter()) is img
    assert (apply_jitter(img, Jitter(brightness=1.5)) == 150).all()
    gray = np.full((2, 2, 3), 80, np.uint8)
    assert np.array_equal(
        apply_jitter(gray, Jitter(contrast=0.5, saturation=2.0)), gray
    )  # uniform gray is a fixed point
