"""Prompts: a box or clicks on one frame -> a proposed mask for one object, to start or correct tracking.

    from tamvt.prompts import box_to_mask, clicks_to_mask
    mask = box_to_mask(frame, (x0, y0, x1, y1))                 # frame: (H, W, 3) uint8 RGB -> (H, W) bool
    mask = clicks_to_mask(frame, positive=[(x, y)], negative=[], previous=mask)

Coordinates are pixels of the frame as given (x to the right, y down; a box's corners inclusive
of x0, y0 and exclusive of x1, y1). The built-in model is GrabCut (:mod:`tamvt.prompts.grabcut`);
:func:`get_prompt_model` builds one by name.
"""

from __future__ import annotations

from tamvt.prompts.base import Box, Point, PromptModel
from tamvt.prompts.registry import get_prompt_model, prompt_model_names

__all__ = ["Box", "Point", "PromptModel", "box_to_mask", "clicks_to_mask", "get_prompt_model", "prompt_model_names"]


def box_to_mask(frame, box: Box, model: PromptModel | None = None):
    """The proposed mask (H, W) bool for the object inside ``box`` = (x0, y0, x1, y1) on ``frame`` (H, W, 3) uint8."""
    return (model or get_prompt_model("grabcut")).box_to_mask(frame, box)


def clicks_to_mask(frame, positive, negative=(), previous=None, model: PromptModel | None = None):
    """The proposed mask (H, W) bool from object clicks ``positive`` and background clicks ``negative``
    (lists of (x, y)); ``previous`` (H, W) bool, the last proposal, is refined rather than started over."""
    return (model or get_prompt_model("grabcut")).clicks_to_mask(frame, positive, negative, previous)
