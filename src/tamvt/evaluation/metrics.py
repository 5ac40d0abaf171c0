"""Region (J) and boundary (F) similarity and their per-object statistics.

These reproduce the official DAVIS-2017 toolkit (davisvideochallenge/davis2017-evaluation,
``davis2017/metrics.py`` and ``davis2017/utils.py``) number for number:

- ``J`` is the IoU of two binary masks, 1 when both are empty.
- ``F`` is the F-measure of boundary precision / recall: a boundary map from the E / S / SE
  neighbour differences (the image border is not a boundary), each map dilated by a disk of
  radius ``bound_pix = ceil(0.008 * diag)``, a boundary pixel matches when it lies in the other
  map's dilation.
- ``db_statistics`` gives mean, recall (fraction of frames > 0.5) and decay (mean of the first
  of 4 overlapping bins minus mean of the last).

One deliberate difference: the official ``db_statistics`` casts the decay bin indices to
``uint8``, so with >= 256 evaluated frames the indices wrap (297 -> 41), the last bin is empty
and the decay is NaN (NumPy 2 already breaks at 256 frames, because ``uint8(255) + 1`` wraps
to 0). We use int64 indices, which is the formula the toolkit intends; for fewer than 256
evaluated frames both agree bit for bit. See ``docs/evaluation.md``.

Speed: the boundary maps and dilations are computed on the bounding box of the two masks
(plus a one-pixel margin), which gives exactly the full-frame result: boundary pixels can only
lie in that box, and the dilated maps are only read at boundary pixels.
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache

import cv2
import numpy as np

BOUND_TH = 0.008
DECAY_BINS = 4
RECALL_THRESHOLD = 0.5
J_TR_START = 0.75  # J_tr uses the evaluated frames from floor(0.75 * N) on (VOST's "J_last")


def bound_pix(size: tuple[int, int], bound_th: float = BOUND_TH) -> int:
    """Boundary tolerance in pixels for a frame of ``size = (H, W)``: ``ceil(bound_th * diag)``.

    ``np.linalg.norm`` as in the toolkit, so the rounding is the same.
    """
    if bound_th >= 1:
        return int(bound_th)
    return int(np.ceil(bound_th * np.linalg.norm(size)))


@lru_cache(maxsize=16)
def disk(radius: int) -> np.ndarray:
    """``(2r+1, 2r+1)`` uint8 disk ``x^2 + y^2 <= r^2``, as ``skimage.morphology.disk(r)``."""
    r = np.arange(-radius, radius + 1)
    return ((r[:, None] ** 2 + r[None, :] ** 2) <= radius**2).astype(np.uint8)


@lru_cache(maxsize=16)
def _disk_rects(radius: int) -> tuple[np.ndarray, ...]:
    """All-ones kernels whose union is ``disk(radius)``: one per distinct row half-width.

    Row ``dy`` of the disk spans ``|dx| <= w(dy) = isqrt(r^2 - dy^2)``, non-increasing in ``|dy|``;
    the rectangle ``|dx| <= w(dy0), |dy| <= |dy0|`` lies in the disk and covers row ``dy0``.
    """
    tallest: dict[int, int] = {}
    for dy in range(radius + 1):
        tallest[math.isqrt(radius * radius - dy * dy)] = dy
    return tuple(np.ones((2 * h + 1, 2 * w + 1), np.uint8) for w, h in tallest.items())


def dilate_disk(bmap: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation of ``bmap (H, W)`` uint8 0/1 by ``disk(radius)`` -> uint8 ``(H, W)``.

    Equal to ``cv2.dilate(bmap, disk(radius))``, computed as the max of a few rectangle
    dilations (separable in OpenCV, so about twice as fast for the radii of 480p frames).
    """
    rects = _disk_rects(radius)
    out = cv2.dilate(bmap, rects[0])
    for k in rects[1:]:
        np.maximum(out, cv2.dilate(bmap, k), out=out)
    return out


def seg2bmap(seg: np.ndarray) -> np.ndarray:
    """Boundary map of a binary mask ``seg (H, W)`` -> bool ``(H, W)``.

    A pixel is a boundary pixel when it differs from its E, S or SE neighbour; in the last row
    only the E neighbour counts, in the last column only the S one, the corner never (so the
    image border itself is not a boundary). This is ``_seg2bmap`` of the toolkit.
    """
    seg = seg.astype(bool, copy=False)
    b = np.zeros_like(seg)
    inner = seg[:-1, :-1]
    b[:-1, :-1] = (inner ^ seg[:-1, 1:]) | (inner ^ seg[1:, :-1]) | (inner ^ seg[1:, 1:])
    b[-1, :-1] = seg[-1, :-1] ^ seg[-1, 1:]  # last row: E neighbour only
    b[:-1, -1] = seg[:-1, -1] ^ seg[1:, -1]  # last column: S neighbour only; corner stays 0
    return b


def _union_box(a: np.ndarray, b: np.ndarray) -> tuple[slice, slice] | None:
    """Slices of the bounding box of ``a | b`` grown by one pixel (clipped), or None if both empty."""
    u = (a | b).view(np.uint8)
    x, y, w, h = cv2.boundingRect(u)
    if w == 0 or h == 0:
        return None
    H, W = a.shape
    # one extra row / column after the box: it is all zeros, so the crop's last row / column
    # gets the same boundary as in the full frame; one before it: boundary pixels sit there too.
    return slice(max(y - 1, 0), min(y + h + 1, H)), slice(max(x - 1, 0), min(x + w + 1, W))


def region_similarity(gt: np.ndarray, pred: np.ndarray) -> float:
    """J: IoU of binary masks ``gt, pred (H, W)``; 1.0 when both are empty."""
    gt = gt.astype(bool, copy=False)
    pred = pred.astype(bool, copy=False)
    union = np.count_nonzero(gt | pred)
    if union == 0:
        return 1.0
    return np.count_nonzero(gt & pred) / union


def boundary_f(gt: np.ndarray, pred: np.ndarray, bound: int) -> float:
    """F: boundary F-measure of binary masks ``gt, pred (H, W)`` with tolerance ``bound`` pixels.

    Conventions of the toolkit: no boundary in either -> 1; only one has a boundary -> 0.
    """
    gt = gt.astype(bool, copy=False)
    pred = pred.astype(bool, copy=False)
    box = _union_box(gt, pred)
    if box is None:
        return 1.0
    fg_b = seg2bmap(pred[box])
    gt_b = seg2bmap(gt[box])
    n_fg = int(np.count_nonzero(fg_b))
    n_gt = int(np.count_nonzero(gt_b))
    if n_fg == 0 and n_gt > 0:
        precision, recall = 1.0, 0.0
    elif n_fg > 0 and n_gt == 0:
        precision, recall = 0.0, 1.0
    elif n_fg == 0 and n_gt == 0:
        precision, recall = 1.0, 1.0
    else:
        fg_dil = dilate_disk(fg_b.view(np.uint8), bound)
        gt_dil = dilate_disk(gt_b.view(np.uint8), bound)
        precision = np.count_nonzero(fg_b & gt_dil.view(bool)) / float(n_fg)
        recall = np.count_nonzero(gt_b & fg_dil.view(bool)) / float(n_gt)
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def decay_bin_edges(n: int) -> np.ndarray:
    """The 5 edges of the 4 overlapping decay bins for ``n`` values, int64 (bins share endpoints)."""
    return (np.round(np.linspace(1, n, DECAY_BINS + 1) + 1e-10) - 1).astype(np.int64)


def db_statistics(values: np.ndarray) -> tuple[float, float, float]:
    """Mean, recall and decay of the per-frame values ``(N,)`` of one object.

    Same arithmetic as the toolkit (``np.nanmean``, recall ``> 0.5``), int64 decay indices.
    With no values all three are NaN.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return math.nan, math.nan, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        mean = float(np.nanmean(values))
        recall = float(np.nanmean(values > RECALL_THRESHOLD))
        ids = decay_bin_edges(values.size)
        first = values[ids[0] : ids[1] + 1]
        last = values[ids[DECAY_BINS - 1] : ids[DECAY_BINS] + 1]
        decay = float(np.nanmean(first) - np.nanmean(last))
    return mean, recall, decay


def j_tr_values(values: np.ndarray) -> np.ndarray:
    """The tail of the per-frame J ``(N,)`` that J_tr averages: the last ``N - floor(0.75 N)`` values."""
    values = np.asarray(values)
    return values[int(math.floor(values.size * J_TR_START)) :]
