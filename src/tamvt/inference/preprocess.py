"""Frame and mask preprocessing for inference: resizing, ImageNet normalisation, merging.

The resize rule is the authors' (DETR's ``RandomResize([size], max_size)`` at evaluation): the short
side becomes ``short_side`` unless that would push the long side past ``max_long_side``, in which
case the long side is capped. Outputs always go back to the original frame size.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

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
        frame = np.asarray(Image.fromarray(frame).resize((shape[1], shape[0]), Image.BILINEAR))
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


def merge_masks(probs: torch.Tensor | np.ndarray, ids: list[int], policy: MergePolicy = "argmax",
                bg_threshold: float = 0.5) -> np.ndarray:
    """Per-object probabilities ``(K, H, W)`` -> index mask ``(H, W)`` uint8 of object ids.

    ``argmax``: the winner over [background = ``bg_threshold``, p_1, ..., p_K] (ties go to the earlier entry).
    ``first-wins``: the authors' rule — objects in id order paint ``p > 0.5`` where nothing is painted yet.
    """
    p = torch.as_tensor(probs).float()
    out = torch.zeros(p.shape[-2:], dtype=torch.uint8)
    if p.shape[0] == 0:
        return out.numpy()
    id_t = torch.tensor([0, *ids], dtype=torch.uint8)
    if policy == "argmax":
        bg = torch.full((1, *p.shape[-2:]), float(bg_threshold))
        return id_t[torch.cat([bg, p]).argmax(0)].numpy()
    if policy == "first-wins":
        for k in sorted(range(len(ids)), key=lambda i: ids[i]):
            out[(p[k] > 0.5) & (out == 0)] = ids[k]
        return out.numpy()
    raise ValueError(f"unknown merge policy {policy!r}")
