"""The engine's input and output transforms (as SAM 2's ``SAM2Transforms``): frames and masks into the
network's input (resize, ImageNet normalisation), its logits back to probabilities at the original
frame size, and the per-object probabilities merged into one index mask.

The resize rule is the authors' (DETR's ``RandomResize([size], max_size)`` at evaluation): the short
side becomes ``short_side`` unless that would push the long side past ``max_long_side``, in which
case the long side is capped. Outputs always go back to the original frame size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from tamvt.config import InferenceConfig
from tamvt.imagenet import normalize_

MergePolicy = Literal["argmax", "first-wins"]


def resized_shape(size: tuple[int, int], short_side: int | None, max_long_side: int | None) -> tuple[int, int]:
    """Model input ``(H, W)`` for a frame of ``size = (H, W)``; ``short_side=None`` keeps the size."""
    h, w = size
    if short_side is None:
        return h, w
    target = short_side
    lo, hi = float(min(h, w)), float(max(h, w))
    if max_long_side is not None and hi / lo * target > max_long_side:
        target = int(round(max_long_side * lo / hi))
    if (w <= h and w == target) or (h <= w and h == target):
        return h, w
    if w < h:
        return int(target * h / w), target
    return target, int(target * w / h)


def prepare_frame(frame: np.ndarray, shape: tuple[int, int]) -> torch.Tensor:
    """``frame (H, W, 3) uint8 RGB`` -> ``(3, h, w)`` float32, resized (PIL bilinear) and normalised."""
    if frame.shape[:2] != shape:
        frame = np.asarray(Image.fromarray(frame).resize((shape[1], shape[0]), Image.Resampling.BILINEAR))
    if not frame.flags.writeable:  # decoded frames can be read-only views; torch warns on those
        frame = frame.copy()
    return normalize_(torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1).float().div_(255.0))


def prepare_mask(mask: np.ndarray, shape: tuple[int, int]) -> torch.Tensor:
    """Binary ``mask (H, W)`` -> ``(1, h, w)`` float32 in {0, 1}, nearest-resized to the model input."""
    m = torch.from_numpy(np.ascontiguousarray(mask)).float()[None, None]
    if m.shape[-2:] != shape:
        m = (F.interpolate(m, size=shape, mode="nearest") > 0.5).float()
    return m[0]


def logits_to_probs(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Stride-4 ``logits (K, h, w)`` -> probabilities ``(K, H, W)`` at ``size`` (bilinear, then sigmoid)."""
    up = F.interpolate(logits[None].float(), size=size, mode="bilinear", align_corners=False)[0]
    return up.sigmoid()


def merge_masks(
    probs: torch.Tensor | np.ndarray, ids: list[int], policy: MergePolicy = "argmax", bg_threshold: float = 0.5
) -> np.ndarray:
    """Per-object probabilities ``(K, H, W)`` -> index mask ``(H, W)`` uint8 of object ids.

    ``argmax``: the winner over [background = ``bg_threshold``, p_1, ..., p_K] (ties go to the earlier entry).
    ``first-wins``: the authors' rule — objects in id order paint ``p > 0.5`` where nothing is painted yet.
    """
    p = torch.as_tensor(probs).float()
    out = torch.zeros(p.shape[-2:], dtype=torch.uint8)
    if p.shape[0] == 0:
        return out.numpy()
    if policy == "argmax":
        # a running comparison, strict so that ties keep the earlier entry as argmax does: torch's argmax
        # over the leading dim of a (K+1, H, W) tensor took 80 ms at 480x854 on the CPU, this takes 2-5 ms
        best = torch.full(p.shape[-2:], float(bg_threshold))
        for k, obj in enumerate(ids):
            out.masked_fill_(p[k] > best, obj)
            best = torch.maximum(best, p[k])
        return out.numpy()
    if policy == "first-wins":
        for k in sorted(range(len(ids)), key=lambda i: ids[i]):
            out[(p[k] > 0.5) & (out == 0)] = ids[k]
        return out.numpy()
    raise ValueError(f"unknown merge policy {policy!r}")


@dataclass(frozen=True)
class FrameTransforms:
    """Input preparation and output post-processing of one predictor's settings.

    Args:
        short_side, max_long_side: the resize rule (:func:`resized_shape`; ``short_side=None`` keeps the size).
        merge, bg_threshold: how per-object probabilities become one index mask (:func:`merge_masks`).
    """

    short_side: int | None = 480
    max_long_side: int | None = 1110
    merge: MergePolicy = "argmax"
    bg_threshold: float = 0.5

    @classmethod
    def from_config(cls, config: InferenceConfig) -> FrameTransforms:
        return cls(config.short_side, config.max_long_side, config.merge, config.bg_threshold)

    def input_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """Network input ``(h, w)`` for frames of ``size = (H, W)``."""
        return resized_shape(size, self.short_side, self.max_long_side)

    def frame(self, frame: np.ndarray) -> torch.Tensor:
        """``frame (H, W, 3)`` uint8 RGB -> ``(3, h, w)`` float32 network input."""
        return prepare_frame(frame, self.input_size((frame.shape[0], frame.shape[1])))

    def mask(self, mask: np.ndarray) -> torch.Tensor:
        """Binary ``mask (H, W)`` -> ``(1, h, w)`` float32 in {0, 1} at the network input size."""
        return prepare_mask(mask, self.input_size((mask.shape[0], mask.shape[1])))

    def probs(self, logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Stride-4 ``logits (K, h', w')`` -> probabilities ``(K, H, W)`` at the original ``size``."""
        return logits_to_probs(logits, size)

    def merged(self, probs: torch.Tensor | np.ndarray, ids: list[int]) -> np.ndarray:
        """Probabilities ``(K, H, W)`` of objects ``ids`` -> index mask ``(H, W)`` uint8."""
        return merge_masks(probs, ids, self.merge, self.bg_threshold)
