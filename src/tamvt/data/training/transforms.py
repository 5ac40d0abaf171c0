"""Training augmentation that is consistent across a window, and ImageNet normalisation.

A window's frames share one random resize + crop (+ optional horizontal flip and colour jitter),
drawn once by :meth:`WindowAugment.sample`, so the motion between frames is the video's own.
Resize, crop and flip are one affine map applied with ``cv2.warpAffine`` (bilinear for frames,
nearest for masks; outside the frame: black / label 0). The crop is chosen so that the target's
bounding box in the memory frames stays in view (or, when the box is larger than the crop, so that
the crop lies inside the box).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from tamvt.imagenet import normalize_


def normalize(frames: np.ndarray) -> torch.Tensor:
    """``frames (T, H, W, 3) uint8 RGB`` -> ``(T, 3, H, W)`` float32, ``(x/255 − mean) / std``.

    Same float32 arithmetic as torchvision ``ToTensor`` + ``Normalize`` (the authors' preprocessing).
    """
    return normalize_(torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div_(255.0))


# ------------------------------------------------------------------------------- colour jitter


@dataclass(frozen=True)
class Jitter:
    """Colour change factors (1 = unchanged) and a hue shift in turns (fraction of 360°)."""

    brightness: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0
    hue: float = 0.0


def sample_jitter(rng: np.random.Generator, strength: Sequence[float]) -> Jitter:
    """Draw factors uniformly in ``[1−s, 1+s]`` for brightness/contrast/saturation and a hue shift in
    ``[−h, h]`` from ``strength = (b, c, s, h)`` (torchvision ``ColorJitter`` ranges)."""
    b, c, s, h = strength
    return Jitter(
        brightness=float(rng.uniform(max(0.0, 1 - b), 1 + b)),
        contrast=float(rng.uniform(max(0.0, 1 - c), 1 + c)),
        saturation=float(rng.uniform(max(0.0, 1 - s), 1 + s)),
        hue=float(rng.uniform(-h, h)),
    )


def apply_jitter(image: np.ndarray, jitter: Jitter) -> np.ndarray:
    """``image (H, W, 3) uint8 RGB`` -> jittered uint8, in the fixed order brightness, contrast,
    saturation, hue (unlike torchvision, no random order: the order is part of the window's draw)."""
    if jitter == Jitter():
        return image
    x = image.astype(np.float32)
    x *= jitter.brightness
    gray_weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    if jitter.contrast != 1.0:
        mean = float((np.clip(x, 0, 255) @ gray_weights).mean())
        x = (x - mean) * jitter.contrast + mean
    if jitter.saturation != 1.0:
        gray = (np.clip(x, 0, 255) @ gray_weights)[..., None]
        x = (x - gray) * jitter.saturation + gray
    out = np.clip(x + 0.5, 0, 255).astype(np.uint8)
    if jitter.hue != 0.0:
        hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV)  # uint8 hue in [0, 180)
        shift = int(round(jitter.hue * 180))
        hsv[..., 0] = ((hsv[..., 0].astype(np.int32) + shift) % 180).astype(np.uint8)
        out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return out


# ------------------------------------------------------------------------------- geometry


def warp(image: np.ndarray, matrix: np.ndarray, out_size: tuple[int, int], is_mask: bool) -> np.ndarray:
    """Apply a 2×3 forward affine ``matrix`` (source pixel -> output pixel, pixel-centre coordinates).

    Frames: bilinear, black outside. Masks (labels): nearest, 0 outside.
    """
    h, w = out_size
    flags = cv2.INTER_NEAREST if is_mask else cv2.INTER_LINEAR
    return cv2.warpAffine(
        np.ascontiguousarray(image),
        matrix.astype(np.float64),
        (w, h),
        flags=flags,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


def resize_crop_matrix(scale: float, top: float, left: float, flip_width: int | None = None) -> np.ndarray:
    """2×3 map: resize by ``scale`` (same pixel-centre convention as ``cv2.resize``), crop at
    ``(top, left)`` of the resized frame, then mirror horizontally inside an output of width
    ``flip_width`` if given."""
    off = 0.5 * scale - 0.5
    m = np.array([[scale, 0.0, off - left], [0.0, scale, off - top]])
    if flip_width is not None:
        m = hflip_matrix(flip_width) @ to3x3(m)
    return m


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(y0, x0, y1, x1)`` (inclusive-exclusive) of the non-zero pixels of ``mask (H, W)``, or None."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return None
    return int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1


def _crop_origin(rng: np.random.Generator, size: float, out: int, box: tuple[float, float] | None) -> int:
    """Random crop start along one axis of a resized frame of length ``size``: keeps ``box`` (lo, hi)
    inside the crop when it fits, else the crop inside the box; may be negative (padding) when
    ``size < out``."""
    lo, hi = min(0.0, size - out), max(0.0, size - out)
    if box is not None:
        b0, b1 = box
        lo, hi = max(lo, min(b0, b1 - out)), min(hi, max(b0, b1 - out))
    lo_i, hi_i = math.ceil(lo), math.floor(hi)
    if hi_i < lo_i:  # the range is narrower than one pixel
        lo_i = hi_i = int(round((lo + hi) / 2))
    return int(rng.integers(lo_i, hi_i + 1))


@dataclass(frozen=True)
class WindowParams:
    """One window's draw: the affine map (source -> output pixels) and the colour jitter."""

    matrix: np.ndarray  # (2, 3)
    out_size: tuple[int, int]
    flip: bool
    jitter: Jitter


@dataclass(frozen=True)
class WindowAugment:
    """Random resize / crop / flip / colour jitter shared by all frames of a window.

    Args:
        out_size: output ``(H, W)``.
        scale_range: resize factor range relative to the smallest scale at which the frame covers
            ``out_size`` (1.0 = just covers it; < 1 leaves black borders). Drawn log-uniformly.
        hflip_prob: probability of a horizontal flip.
        jitter: ``(brightness, contrast, saturation, hue)`` strengths; zeros disable the jitter.
    """

    out_size: tuple[int, int] = (384, 640)
    scale_range: tuple[float, float] = (1.0, 1.5)
    hflip_prob: float = 0.5
    jitter: tuple[float, float, float, float] = (0.1, 0.1, 0.1, 0.02)

    def sample(self, rng: np.random.Generator, size: tuple[int, int], focus: np.ndarray | None) -> WindowParams:
        """Draw the window's transform for frames of ``size (H, W)``; ``focus (H, W)`` = pixels to keep
        in view (the target in the memory frames), or None."""
        h, w = size
        oh, ow = self.out_size
        cover = max(oh / h, ow / w)
        lo, hi = self.scale_range
        scale = cover * math.exp(rng.uniform(math.log(lo), math.log(hi)))
        box = mask_bbox(focus) if focus is not None else None
        # box edges in resized coordinates (pixel i covers [i, i+1) before resizing)
        top = _crop_origin(rng, h * scale, oh, None if box is None else (box[0] * scale, box[2] * scale))
        left = _crop_origin(rng, w * scale, ow, None if box is None else (box[1] * scale, box[3] * scale))
        flip = bool(rng.random() < self.hflip_prob)
        jitter = sample_jitter(rng, self.jitter) if any(self.jitter) else Jitter()
        matrix = resize_crop_matrix(scale, top, left, ow if flip else None)
        return WindowParams(matrix=matrix, out_size=self.out_size, flip=flip, jitter=jitter)

    def __call__(
        self,
        frames: Sequence[np.ndarray],
        masks: Sequence[np.ndarray],
        rng: np.random.Generator,
        focus: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Transform a window.

        Args:
            frames: T frames ``(H, W, 3)`` uint8 RGB of one size.
            masks: T label masks ``(H, W)`` uint8 (ids, void 255 kept; 0 outside the frame).
            focus: ``(H, W)`` pixels to keep in view, or None.
        Returns: frames ``(T, h, w, 3)`` uint8 and masks ``(T, h, w)`` uint8 at ``out_size``.
        """
        params = self.sample(rng, frames[0].shape[:2], focus)
        return apply_window(frames, masks, params)


def apply_window(
    frames: Sequence[np.ndarray], masks: Sequence[np.ndarray], params: WindowParams
) -> tuple[np.ndarray, np.ndarray]:
    """Apply one :class:`WindowParams` to every frame and mask (shapes as in :meth:`WindowAugment.__call__`)."""
    out_f = np.stack([apply_jitter(warp(f, params.matrix, params.out_size, False), params.jitter) for f in frames])
    out_m = np.stack([warp(m, params.matrix, params.out_size, True) for m in masks])
    return out_f, out_m


# ------------------------------------------------------------------------------- per-frame affine


def to3x3(matrix: np.ndarray) -> np.ndarray:
    """A 2×3 affine map as a 3×3 homogeneous matrix (to compose maps with ``@``)."""
    return np.vstack([matrix, [0.0, 0.0, 1.0]])


def crop_matrix(top: float, left: float, height: float, width: float, out_size: tuple[int, int]) -> np.ndarray:
    """2×3 map sending the source box ``(top, left, height, width)`` onto the ``out_size`` output
    (pixel-centre convention of ``cv2.resize``; the aspect ratio may change)."""
    oh, ow = out_size
    sy, sx = oh / height, ow / width
    return np.array([[sx, 0.0, sx * (0.5 - left) - 0.5], [0.0, sy, sy * (0.5 - top) - 0.5]])


def hflip_matrix(width: int) -> np.ndarray:
    """2×3 horizontal mirror inside an output of ``width`` pixels."""
    return np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0]])


def random_affine_matrix(
    rng: np.random.Generator,
    out_size: tuple[int, int],
    degrees: float = 20.0,
    translate: float = 0.1,
    scale: tuple[float, float] = (0.9, 1.1),
    shear: float = 10.0,
) -> np.ndarray:
    """2×3 random affine about the output centre (torchvision ``RandomAffine`` ranges): rotation in
    ``±degrees``, translation up to ``translate`` × the output size, scale in ``scale``, x-shear in
    ``±shear`` degrees."""
    oh, ow = out_size
    cy, cx = (oh - 1) / 2, (ow - 1) / 2
    angle = math.radians(rng.uniform(-degrees, degrees))
    sh = math.radians(rng.uniform(-shear, shear))
    s = rng.uniform(*scale)
    ty, tx = rng.uniform(-translate, translate) * oh, rng.uniform(-translate, translate) * ow
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    linear = rot @ np.array([[1.0, math.tan(sh)], [0.0, 1.0]]) * s
    centre = np.array([cx, cy])
    offset = centre + np.array([tx, ty]) - linear @ centre
    return np.hstack([linear, offset[:, None]])
