"""Box and click prompts in the app: the server's one prompt model (:mod:`tamvt.prompts`, chosen by
``--prompt-model``) and the proposal a page is working on.

A proposal is never an annotation: it lives in the page and, for the next click's refinement, as the
session's :attr:`~tamvt.app.sessions.AppSession.proposal` (memory only, one per session, replaced by the
next prompt). The page keeps it by sending it as the frame's painted mask, the same request as a brush
stroke; until then nothing on disk or in the engine changes.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from tamvt.app.errors import AppError
from tamvt.prompts import Box, Point, PromptModel, get_prompt_model

MAX_CLICKS = 200  # object or background clicks in one request


@dataclass(eq=False)
class Proposal:
    """A proposed mask ``(H, W)`` bool of object ``obj`` on ``frame``."""

    frame: int
    obj: int
    mask: np.ndarray


class Prompter:
    """The server's prompt model, built on first use (or given), called by one request at a time: a model
    holding weights (SAM 2) is not safe across threads. Its calls are blocking: the routes run them in the
    thread pool, so the event loop keeps answering while GrabCut takes its second."""

    def __init__(self, name: str = "grabcut", device: str = "cpu", model: PromptModel | None = None) -> None:
        self.name = model.name if model is not None else name
        self.device = device
        self._model = model
        self._lock = threading.Lock()

    def model(self) -> PromptModel:
        if self._model is None:
            self._model = get_prompt_model(self.name, self.device)
        return self._model

    def box(self, frame: np.ndarray, k: int, obj: int, box: Box) -> Proposal:
        """A new proposal for object ``obj`` on frame ``k`` (``frame (H, W, 3)`` uint8 RGB) from ``box``."""
        with self._lock:
            mask = self.model().box_to_mask(frame, box)
        return Proposal(k, obj, _checked(mask, frame))

    def clicks(
        self,
        frame: np.ndarray,
        k: int,
        obj: int,
        positive: Sequence[Point],
        negative: Sequence[Point],
        previous: np.ndarray | None,
    ) -> Proposal:
        """The proposal from all the clicks made so far, refining ``previous`` ``(H, W)`` bool (the last
        proposal, or the object's current mask on the frame) when given. With background clicks only, the
        pixel deepest inside ``previous`` (away from those clicks) stands for the object: a model needs one
        object click, and a background click on a proposal means "less of it", not "none of it"."""
        positive, negative = list(positive), list(negative)
        seeds = positive
        if not positive and previous is not None and previous.any():
            seeds = [_innermost(previous, negative)]
        if not seeds:
            raise AppError(400, "click the object first (a left click); background clicks refine a proposal")
        with self._lock:
            mask = self.model().clicks_to_mask(frame, seeds, negative, previous)
        return Proposal(k, obj, _checked(mask, frame))


def _checked(mask: np.ndarray, frame: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != frame.shape[:2]:  # a model's bug must not reach the page as a wrong-sized mask
        raise RuntimeError(f"the prompt model returned a {mask.shape} mask for a {frame.shape[:2]} frame")
    return mask


def _innermost(mask: np.ndarray, away: Sequence[Point]) -> Point:
    """The pixel of ``mask`` farthest from its edge and from the points ``away``, as (x, y)."""
    inside = mask.astype(np.uint8)
    h, w = inside.shape
    for x, y in away:
        if 0 <= x < w and 0 <= y < h:
            inside[int(y), int(x)] = 0
    depth = cv2.distanceTransform(inside, cv2.DIST_L2, 3)
    if depth.max() <= 0:
        raise AppError(400, "the background clicks cover the whole proposal: click the object (a left click)")
    row, col = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return float(col), float(row)
