"""Finding a lost object again by its look, where the memory readout does not see it come back.

The readout ties an object to where memory saw it: one that comes back elsewhere (it left the frame, or
a cover swept over it while it moved) often reads as background there, or the readout keeps a mask on
what now stands where it vanished. Its look, the stride-8 backbone features averaged under its given
mask (:func:`tamvt.memory.object_look`), still tells its pixels apart from most of the frame. What looked
like it in the frame where it was lost is not it (a still look-alike, the blob the readout left behind),
nor is another object's mask; what is *new* and like it, in one region, is taken as its mask.

Pure tensor functions, used by :func:`tamvt.memory.step_clip` (``PresenceRule.find_look``).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

FIND_SHARE = 0.7  # the region taken holds at least this share of the pixels like the object (else: ambiguous)
FIND_AREA = (0.05, 1.5)  # its area, as a multiple of the object's peak area, lies in this range
# ... and it has at least this many cells: one or two like cells are specks, nearly never the object (on
# the exits and first tuning suites, 1 of 26 regions of one or two cells the search took was on it)
FIND_MIN_CELLS = 3
FIND_LOGIT = 8.0  # the logit given inside a region found (p ~ 0.9997); outside it, the rule's empty logit


def look_map(level: Tensor, look: Tensor, centre: Tensor) -> Tensor:
    """``(B, T, h, w)``: the cosine, taken from each object's ``centre``, of every cell's features in
    ``level`` ``(T, C, h, w)`` and the object's ``look``; ``look`` and ``centre`` are ``(B, C)``, or
    ``(B, K, C)`` for ``K`` looks of each object (the largest cosine counts), as
    :func:`tamvt.memory.likeness`."""
    if look.ndim == 2:
        look, centre = look[:, None], centre[:, None]
    feats = level.detach().float()[None]  # (1, T, C, h, w)
    cos = []
    for k in range(look.shape[1]):  # one look at a time: a (B, T, C, h, w) difference each
        c = centre[:, k].to(feats)[:, None, :, None, None]  # (B, 1, C, 1, 1)
        cos.append(F.cosine_similarity(feats - c, look[:, k].to(feats)[:, None, :, None, None] - c, dim=2))
    return torch.stack(cos).amax(0)


def grow(mask: Tensor) -> Tensor:
    """``mask`` ``(..., h, w)`` bool grown by one cell on every side (8-neighbourhood)."""
    shape = mask.shape
    flat = mask.reshape(-1, 1, *shape[-2:]).float()
    return (F.max_pool2d(flat, 3, 1, 1) > 0).reshape(shape)


def regions(mask: Tensor) -> Tensor:
    """``(h, w)`` long: the 8-connected regions of ``mask`` ``(h, w)`` bool, labelled 1, 2, ... (OpenCV's
    connected components, as :func:`tamvt.losses.count_components` counts them), 0 outside the mask."""
    _, label = cv2.connectedComponents(np.ascontiguousarray(mask.cpu().numpy(), dtype=np.uint8), connectivity=8)
    return torch.from_numpy(label.astype(np.int64)).to(mask.device)


def main_region(mask: Tensor, share: float = FIND_SHARE) -> Tensor | None:
    """The region of ``mask`` ``(h, w)`` bool with the most cells, when it holds at least ``share`` of
    the mask's cells; ``None`` for an empty mask or one split into regions none of which is the main."""
    total = int(mask.sum())
    if total == 0:
        return None
    label = regions(mask)
    ids, counts = torch.unique(label[mask], return_counts=True)
    k = int(counts.argmax())
    if int(counts[k]) < share * total:
        return None
    return label == ids[k]


def find_lost(
    like: Tensor,
    searched: Tensor,
    taken: Tensor,
    stale: Tensor,
    peak: Tensor,
) -> Tensor:
    """``(B, T, h, w)`` bool: where each object is found by its look, empty where it is not.

    Args:
        like: ``(B, T, h, w)`` bool, the cells like each object (:func:`look_map` above a threshold).
        searched: ``(B, T)`` bool, the frames each object is looked for in (lost, and not found by the
            readout).
        taken: ``(B, T, h, w)`` bool, the cells of the other objects' masks in each frame (an object's
            cells are not another's; regions found here are added for the objects after it).
        stale: ``(B, h, w)`` bool, the cells like each object in the frame where it was lost, grown by a
            cell (:func:`grow`): not it.
        peak: ``(B,)`` each object's peak area, a fraction of the frame: a region outside
            :data:`FIND_AREA` times it, or of fewer than :data:`FIND_MIN_CELLS` cells, is not taken.
    """
    found = torch.zeros_like(like)
    taken = taken.clone()
    low, high = FIND_AREA
    for b in range(like.shape[0]):
        for t in range(like.shape[1]):
            if not bool(searched[b, t]):
                continue
            region = main_region(like[b, t] & ~stale[b] & ~taken[b, t])
            if region is None or int(region.sum()) < FIND_MIN_CELLS:
                continue
            area = float(region.float().mean())
            if low * float(peak[b]) <= area <= high * float(peak[b]):
                found[b, t] = region
                others = torch.arange(like.shape[0], device=like.device) != b
                taken[others, t] |= region
    return found
