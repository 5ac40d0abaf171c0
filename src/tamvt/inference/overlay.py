"""Overlay frames: the frame blended with each object's palette colour, plus the object contours."""

from __future__ import annotations

import numpy as np

from tamvt.data.palette import palette_colors


def contours(mask: np.ndarray, thickness: int = 1) -> np.ndarray:
    """Bool ``(H, W)``: object pixels (id > 0) within ``thickness`` px of a pixel with another id.

    A pixel is on the contour when one of its 4 neighbours has a different id (the image border
    is not a contour); ``thickness > 1`` grows the band inwards by repeated 4-neighbour dilation.
    """
    edge = np.zeros(mask.shape, dtype=bool)
    edge[1:] |= mask[1:] != mask[:-1]
    edge[:-1] |= mask[:-1] != mask[1:]
    edge[:, 1:] |= mask[:, 1:] != mask[:, :-1]
    edge[:, :-1] |= mask[:, :-1] != mask[:, 1:]
    band = edge
    for _ in range(thickness - 1):
        grown = band.copy()
        grown[1:] |= band[:-1]
        grown[:-1] |= band[1:]
        grown[:, 1:] |= band[:, :-1]
        grown[:, :-1] |= band[:, 1:]
        band = grown
    return band & (mask > 0)


def overlay(
    frame: np.ndarray, mask: np.ndarray, palette: bytes | None = None, alpha: float = 0.5, thickness: int | None = None
) -> np.ndarray:
    """Blend ``mask (H, W)`` ids into ``frame (H, W, 3)`` uint8 RGB; returns a new ``(H, W, 3)`` uint8.

    Object pixels become ``(1 - alpha) * frame + alpha * colour``; contours are drawn in the full
    colour, ``thickness`` px wide (default: 1 px per 240 px of the short side, at least 1).
    """
    if frame.shape[:2] != mask.shape:
        raise ValueError(f"frame {frame.shape[:2]} and mask {mask.shape} differ in size")
    colors = palette_colors(palette)[mask]  # (H, W, 3)
    fg = mask > 0
    out = frame.copy()
    blend = (1.0 - alpha) * frame[fg].astype(np.float32) + alpha * colors[fg].astype(np.float32)
    out[fg] = np.clip(np.rint(blend), 0, 255).astype(np.uint8)
    if thickness is None:
        thickness = max(1, round(min(mask.shape) / 240))
    edge = contours(mask, thickness)
    out[edge] = colors[edge]
    return out
