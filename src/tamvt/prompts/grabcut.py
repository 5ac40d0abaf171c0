"""The built-in prompt model: OpenCV's GrabCut (a colour-model graph cut), seeded from a box or clicks.

Where it fails: thin parts (a handle, a leg) are cut off by the smoothness term, and an object sharing
its colours with the background around it leaks into it or loses those parts. It needs no weights and
takes about a second on a 640x480 frame; the brush fixes what it misses.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from tamvt.prompts.base import Box, Point, PromptModel

ITERATIONS = 5


def _largest_component(mask: np.ndarray, keep: Sequence[tuple[int, int]] = ()) -> np.ndarray:
    """The component(s) of ``mask`` holding a ``keep`` point, or the largest one when no point is given."""
    n, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    if n <= 2:
        return mask
    wanted = {int(labels[y, x]) for x, y in keep if labels[y, x] > 0}
    if not wanted:
        sizes = np.bincount(labels.ravel())[1:]
        wanted = {int(np.argmax(sizes)) + 1}
    return np.isin(labels, list(wanted))


class GrabCutPrompts(PromptModel):
    name = "grabcut"

    def __init__(self, iterations: int = ITERATIONS, click_radius: int | None = None) -> None:
        self.iterations = iterations
        self.click_radius = click_radius

    def _run(self, frame: np.ndarray, labels: np.ndarray) -> np.ndarray:
        bgr = np.ascontiguousarray(frame[..., ::-1])
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        labels = labels.copy()
        if not (labels == cv2.GC_FGD).any() and not (labels == cv2.GC_PR_FGD).any():
            return np.zeros(labels.shape, bool)
        if not ((labels == cv2.GC_BGD) | (labels == cv2.GC_PR_BGD)).any():
            return np.ones(labels.shape, bool)  # nothing says what the background looks like
        cv2.grabCut(
            bgr,
            labels,
            (0, 0, 1, 1),
            bgd,
            fgd,  # rect unused with a mask
            self.iterations,
            cv2.GC_INIT_WITH_MASK,
        )
        return (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)

    def box_to_mask(self, frame: np.ndarray, box: Box) -> np.ndarray:
        frame = self.check_frame(frame)
        x0, y0, x1, y1 = self.check_box(box, frame.shape)
        labels = np.full(frame.shape[:2], cv2.GC_BGD, np.uint8)
        labels[y0:y1, x0:x1] = cv2.GC_PR_FGD
        if (x1 - x0) * (y1 - y0) >= frame.shape[0] * frame.shape[1] * 0.98:
            # a box over the whole frame leaves no sure background: treat its rim as probable background
            rim = max(2, min(x1 - x0, y1 - y0) // 20)
            labels[:] = cv2.GC_PR_BGD
            labels[y0 + rim : y1 - rim, x0 + rim : x1 - rim] = cv2.GC_PR_FGD
        mask = self._run(frame, labels)
        return _largest_component(mask, [((x0 + x1) // 2, (y0 + y1) // 2)]) if mask.any() else mask

    def clicks_to_mask(
        self,
        frame: np.ndarray,
        positive: Sequence[Point],
        negative: Sequence[Point] = (),
        previous: np.ndarray | None = None,
    ) -> np.ndarray:
        frame = self.check_frame(frame)
        pos = self.check_points(positive, frame.shape, "object")
        neg = self.check_points(negative, frame.shape, "background")
        h, w = frame.shape[:2]
        if not pos:
            return np.zeros((h, w), bool)
        radius = self.click_radius or max(2, min(h, w) // 60)
        if previous is not None and np.asarray(previous).shape == (h, w) and np.asarray(previous).any():
            prev = np.asarray(previous, bool)
            labels = np.where(prev, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
            # far from the previous proposal is sure background
            grown = cv2.dilate(prev.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=max(h, w) // 10)
            labels[grown == 0] = cv2.GC_BGD
        else:
            # a first click: the object is assumed to lie in a window around the clicks
            labels = np.full((h, w), cv2.GC_BGD, np.uint8)
            xs, ys = [p[0] for p in pos], [p[1] for p in pos]
            half = max(min(h, w) // 4, max(xs) - min(xs), max(ys) - min(ys))
            labels[
                max(0, min(ys) - half) : min(h, max(ys) + half + 1), max(0, min(xs) - half) : min(w, max(xs) + half + 1)
            ] = cv2.GC_PR_BGD
            labels[
                max(0, min(ys) - half // 2) : min(h, max(ys) + half // 2 + 1),
                max(0, min(xs) - half // 2) : min(w, max(xs) + half // 2 + 1),
            ] = cv2.GC_PR_FGD
        for x, y in pos:
            cv2.circle(labels, (x, y), radius, int(cv2.GC_FGD), -1)
        for x, y in neg:
            cv2.circle(labels, (x, y), radius, int(cv2.GC_BGD), -1)
        mask = self._run(frame, labels)
        return _largest_component(mask, pos) if mask.any() else mask
