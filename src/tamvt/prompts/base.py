"""The prompt-model interface and the names ``--prompt-model`` accepts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tamvt.errors import TamvtError

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in frame pixels
Point = tuple[float, float]  # x, y in frame pixels


class PromptModel:
    """Turns a box or clicks on one RGB frame into a proposed object mask.

    Subclasses implement both methods; every input is checked by :meth:`check_frame` /
    :meth:`check_box` / :meth:`check_points` first so all models fail the same way on bad input.
    """

    name = "base"

    def box_to_mask(self, frame: np.ndarray, box: Box) -> np.ndarray:
        """frame (H, W, 3) uint8 RGB, box (x0, y0, x1, y1) -> mask (H, W) bool."""
        raise NotImplementedError

    def clicks_to_mask(
        self,
        frame: np.ndarray,
        positive: Sequence[Point],
        negative: Sequence[Point] = (),
        previous: np.ndarray | None = None,
    ) -> np.ndarray:
        """Object clicks ``positive``, background clicks ``negative`` -> mask (H, W) bool; ``previous``
        (the last proposal for the same object, (H, W) bool) is refined when given."""
        raise NotImplementedError

    # ---- shared checks ------------------------------------------------------------------------

    @staticmethod
    def check_frame(frame: np.ndarray) -> np.ndarray:
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise TamvtError(f"a prompt needs an (H, W, 3) uint8 RGB frame, got {frame.dtype} {frame.shape}")
        return frame

    @staticmethod
    def check_box(box: Box, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        """The box clipped to the frame as integers; an error if it is empty or outside the frame."""
        h, w = shape[:2]
        try:
            x0, y0, x1, y1 = (float(v) for v in box)
        except (TypeError, ValueError):
            raise TamvtError(f"a box is four numbers X0,Y0,X1,Y1, got {box!r}") from None
        if x1 < x0:
            x0, x1 = x1, x0
        if y1 < y0:
            y0, y1 = y1, y0
        bx0, by0 = max(0, int(round(x0))), max(0, int(round(y0)))
        bx1, by1 = min(w, int(round(x1))), min(h, int(round(y1)))
        if bx1 - bx0 < 2 or by1 - by0 < 2:
            raise TamvtError(f"box {tuple(box)} is empty or outside the {w}x{h} frame")
        return bx0, by0, bx1, by1

    @staticmethod
    def check_previous(previous: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
        """``previous`` as (H, W) bool, ``None`` when not given or empty; an error if its size is not the frame's."""
        if previous is None:
            return None
        prev = np.asarray(previous)
        if prev.shape != tuple(shape[:2]):
            raise TamvtError(f"the previous mask is {prev.shape}, the frame {tuple(shape[:2])}")
        prev = prev.astype(bool)
        return prev if prev.any() else None

    @staticmethod
    def check_points(points: Sequence[Point], shape: tuple[int, ...], what: str) -> list[tuple[int, int]]:
        h, w = shape[:2]
        out = []
        for p in points:
            try:
                x, y = (float(v) for v in p)
            except (TypeError, ValueError):
                raise TamvtError(f"a {what} click is two numbers X,Y, got {p!r}") from None
            if not (0 <= x < w and 0 <= y < h):
                raise TamvtError(f"{what} click ({x:g}, {y:g}) is outside the {w}x{h} frame")
            out.append((int(x), int(y)))
        return out

    @classmethod
    def check_clicks(
        cls,
        frame: np.ndarray,
        positive: Sequence[Point],
        negative: Sequence[Point],
        previous: np.ndarray | None,
    ) -> tuple[np.ndarray, list[tuple[int, int]], list[tuple[int, int]], np.ndarray | None]:
        """The checked inputs of :meth:`clicks_to_mask`: the frame, the object and background clicks as
        pixels, the previous proposal (``None`` when not given or empty)."""
        frame = cls.check_frame(frame)
        pos = cls.check_points(positive, frame.shape, "object")
        neg = cls.check_points(negative, frame.shape, "background")
        return frame, pos, neg, cls.check_previous(previous, frame.shape)
