"""The built-in prompt model: OpenCV's GrabCut (a colour-model graph cut), seeded from a box or clicks.

Seeding. A box: outside it is sure background, inside probable object; GrabCut runs on the box
plus a rim of sure background (a quarter of its size), not on the whole frame. A first click: a disk
of radius ``min(H, W) / 16`` around it is probable object, a square window of half-side
``min(H, W) / 4`` around it probable background, the rest of the frame sure background (so the
object is assumed to fit in that window); a small disk at each click is a hard constraint (object
for a click, background for a background click). A refinement (``previous`` given): the previous
proposal is probable object, except its pixels whose colour is nearer a background click's than an
object click's (so one background click on a leak of another colour removes it), a band around it
probable background, the rest sure background. OpenCV's random generator is reseeded per call, so
the same input gives the same mask.

Measured on synthetic frames (48 objects of 24 validation videos at 320x240; ``tests/test_prompts.py``
checks a held-out part of them): a box 10 % larger than the object gives mean IoU 0.99; one click at
the object's centre 0.93-0.96 (0.64-0.82 with the first seeding, a probable-object square half the
window's size); a click on a missed part or a leak, refining, never lowered the IoU.

Where it fails: thin parts (a handle, a leg) are cut off by the smoothness term; an object sharing
its colours with the background around it leaks into it or loses those parts, and a background
click cannot remove a leak of the object's own colour; an object made of parts of clearly different
colours (a ring around a disk) is cut to the clicked part (click the other part too); an object
larger than the click window (about half the frame's short side) is cut to what differs from the
window's rim (use a box). It needs no weights; on a 640x480 frame a box takes about 0.2 s (GrabCut
runs on the box's crop), a first click about 1.3 s (on the whole frame), on one loaded CPU core; the
brush fixes what it misses.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from tamvt.prompts.base import Box, Point, PromptModel

ITERATIONS = 5
SEED_FRACTION = 16  # a first click's probable-object disk: radius min(H, W) / 16 (measured best of 8..24)
WINDOW_FRACTION = 4  # a first click's window: half-side min(H, W) / 4
MARGIN_MIN, MARGIN_FRACTION = 16, 4  # sure background kept around the undecided area: >= 16 px, 1/4 its size


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


def _closer_to(frame: np.ndarray, these: Sequence[tuple[int, int]], those: Sequence[tuple[int, int]]) -> np.ndarray:
    """(H, W) bool: pixels whose colour (CIE Lab) is nearer to the colour around one of ``these``
    points than to the colour around any of ``those`` (each point's colour: the median of a 5x5 patch)."""
    lab = cv2.cvtColor(frame, cv2.COLOR_RGB2LAB).astype(np.float32)
    h, w = lab.shape[:2]

    def nearest(points: Sequence[tuple[int, int]]) -> np.ndarray:
        out = np.full((h, w), np.inf, np.float32)
        for x, y in points:
            c = np.median(lab[max(0, y - 2) : y + 3, max(0, x - 2) : x + 3].reshape(-1, 3), axis=0)
            out = np.minimum(out, ((lab - c) ** 2).sum(axis=2))
        return out

    return nearest(these) < nearest(those)


class GrabCutPrompts(PromptModel):
    name = "grabcut"

    def __init__(self, iterations: int = ITERATIONS, click_radius: int | None = None) -> None:
        self.iterations = iterations
        self.click_radius = click_radius

    def _run(self, frame: np.ndarray, labels: np.ndarray, margin: int | None = None) -> np.ndarray:
        """GrabCut on the part of the frame that matters: the undecided pixels' bounding box plus a
        margin of sure background (the background colour model is learnt there, near the object;
        the graph stays small, so a box on a 640x480 frame costs what the box's area costs). ``margin``
        (pixels) overrides the rule of :data:`MARGIN_MIN` / :data:`MARGIN_FRACTION`."""
        h, w = labels.shape
        if not ((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)).any():
            return np.zeros((h, w), bool)
        undecided = (labels == cv2.GC_PR_FGD) | (labels == cv2.GC_PR_BGD) | (labels == cv2.GC_FGD)
        ys, xs = np.nonzero(undecided)
        if margin is None:
            margin = max(MARGIN_MIN, int(max(xs.max() - xs.min(), ys.max() - ys.min())) // MARGIN_FRACTION)
        y0, y1 = max(0, ys.min() - margin), min(h, ys.max() + 1 + margin)
        x0, x1 = max(0, xs.min() - margin), min(w, xs.max() + 1 + margin)
        crop = labels[y0:y1, x0:x1].copy()
        if not ((crop == cv2.GC_BGD) | (crop == cv2.GC_PR_BGD)).any():
            return np.ones((h, w), bool)  # nothing says what the background looks like
        bgr = np.ascontiguousarray(frame[y0:y1, x0:x1, ::-1])
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.setRNGSeed(0)  # GrabCut's k-means draws from OpenCV's global generator: same input, same mask
        cv2.grabCut(bgr, crop, (0, 0, 1, 1), bgd, fgd, self.iterations, cv2.GC_INIT_WITH_MASK)  # rect unused
        out = np.zeros((h, w), bool)
        out[y0:y1, x0:x1] = (crop == cv2.GC_FGD) | (crop == cv2.GC_PR_FGD)
        return out

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
        frame, pos, neg, prev = self.check_clicks(frame, positive, negative, previous)
        h, w = frame.shape[:2]
        if not pos and prev is None:  # nothing says where the object is
            return np.zeros((h, w), bool)
        # the hard disk at a click stays small: a click near the object's edge must not paint across it
        radius = self.click_radius or max(2, min(h, w) // 120)
        margin = max(h, w)  # clicks: GrabCut on the whole frame (its far background measured better)
        if prev is not None:
            labels = np.where(prev, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
            # far from the previous proposal is sure background
            grown = cv2.dilate(prev.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=max(h, w) // 10)
            labels[grown == 0] = cv2.GC_BGD
            if neg and pos:
                # a background click on a leak: the previous proposal's pixels that look more like the
                # background clicks than like the object clicks start as background, else the object's
                # colour model keeps the leak's colours and one click cannot undo it
                labels[prev & _closer_to(frame, neg, pos)] = cv2.GC_PR_BGD
        else:
            # a first click: the object is assumed to lie in a window around the clicks; only a disk
            # around each click starts as object, so the object's colour model is not mostly background
            labels = np.full((h, w), cv2.GC_BGD, np.uint8)
            xs, ys = [p[0] for p in pos], [p[1] for p in pos]
            half = max(min(h, w) // WINDOW_FRACTION, max(xs) - min(xs), max(ys) - min(ys))
            labels[
                max(0, min(ys) - half) : min(h, max(ys) + half + 1), max(0, min(xs) - half) : min(w, max(xs) + half + 1)
            ] = cv2.GC_PR_BGD
            seed = max(radius, min(h, w) // SEED_FRACTION)
            for x, y in pos:
                cv2.circle(labels, (x, y), seed, int(cv2.GC_PR_FGD), -1)
        for x, y in pos:
            cv2.circle(labels, (x, y), radius, int(cv2.GC_FGD), -1)
        for x, y in neg:
            cv2.circle(labels, (x, y), radius, int(cv2.GC_BGD), -1)
        mask = self._run(frame, labels, margin)
        return _largest_component(mask, pos) if mask.any() and pos else mask
