"""A tiny video of two moving squares and a predictor over a random model, for the engine tests."""

from __future__ import annotations

import numpy as np

from tamvt.config import InferenceConfig
from tamvt.inference.predictor import Predictor

H, W = 64, 96


def squares_video(num_frames: int, seed: int) -> np.ndarray:
    """``(T, H, W, 3)`` uint8: noise + a red square moving right (rows 10..29, x = 5 + 3t) and a blue one
    moving left (rows 35..59, x = 60 - 2t)."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 80, size=(num_frames, H, W, 3), dtype=np.uint8)
    for t in range(num_frames):
        frames[t, 10:30, 5 + 3 * t : 25 + 3 * t] = (250, 40, 40)
        frames[t, 35:60, 60 - 2 * t : 85 - 2 * t] = (40, 40, 250)
    return frames


def box(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """``(H, W)`` uint8 mask, 1 inside rows y0..y1-1 and columns x0..x1-1."""
    m = np.zeros((H, W), np.uint8)
    m[y0:y1, x0:x1] = 1
    return m


def make_predictor(model, **kw) -> Predictor:
    """Frames kept at their size (no resize), clips of 2."""
    return Predictor(model, InferenceConfig(short_side=None, **kw), clip_length=2)
