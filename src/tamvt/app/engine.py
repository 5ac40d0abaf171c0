"""The app's one model, and the only module of the app that calls the engine (:mod:`tamvt.inference`).

The model and its sessions are not thread-safe, while the server answers requests on many threads and
runs each propagation in a thread of its own: every engine call goes through :attr:`Engine.lock`, held
for one frame at a time, so the propagations of several pages take turns frame by frame and a page
that adds a mask waits for at most one frame of another's propagation.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from tamvt.inference import Predictor


class Engine:
    """Loads the model once (on first use, or at :meth:`load`) and opens one :class:`EngineVideo` per session."""

    def __init__(self, checkpoint: Path, device: str = "cpu", precision: str | None = None) -> None:
        self.checkpoint = checkpoint
        self.device = device
        self.precision = precision  # inference.precision; None: the checkpoint's
        self.lock = threading.RLock()
        self._predictor: Predictor | None = None

    def load(self):
        """The :class:`~tamvt.inference.Predictor` (loaded on the first call only)."""
        with self.lock:
            if self._predictor is None:
                from tamvt.inference import Predictor

                fields: dict[str, Any] = {} if self.precision is None else {"precision": self.precision}
                self._predictor = Predictor.from_checkpoint(self.checkpoint, device=self.device, **fields)
            return self._predictor

    def open(self, frames: np.ndarray) -> EngineVideo:
        """An engine session over in-memory ``frames (T, H, W, 3)`` uint8 (nothing is computed yet)."""
        predictor = self.load()
        with self.lock:
            # the session keeps the results it yields (sessions.py); the engine need not store them too
            return EngineVideo(self, predictor, predictor.start(frames, keep_results=False))


class EngineVideo:
    """One video's engine session: the objects' masks given so far, and propagation in either direction."""

    def __init__(self, engine: Engine, predictor, session) -> None:
        self._engine = engine
        self._predictor = predictor
        self._session = session
        self.objects: set[int] = set()  # ids the engine knows

    def annotate(self, frame: int, mask: np.ndarray) -> None:
        """Give the engine the painted index ``mask (H, W)`` of ``frame``: each id in it is a new object or a
        correction of a known one; a known object missing from it is "not visible in this frame"."""
        present = {int(v) for v in np.unique(mask) if v != 0}
        with self._engine.lock:
            for obj in sorted(present | self.objects):
                self._predictor.add_mask(self._session, frame, obj, mask == obj)
            self.objects |= present

    def remove_annotation(self, frame: int) -> list[int]:
        """Forget the masks given in ``frame``: each object given there loses that frame from its memory; an
        object with no other non-empty mask is removed. Returns the ids removed."""
        removed = []
        with self._engine.lock:
            session = self._session
            for obj in sorted(session.annotation(frame)):
                if any(m.any() for f, m in session.annotations[obj].items() if f != frame):
                    self._predictor.remove_annotation(session, frame, obj)
                else:
                    self._predictor.remove_object(session, obj)
                    self.objects.discard(obj)
                    removed.append(obj)
        return removed

    def remove_object(self, obj: int) -> None:
        if obj in self.objects:
            with self._engine.lock:
                self._predictor.remove_object(self._session, obj)
            self.objects.discard(obj)

    def propagate(self, start: int, reverse: bool) -> Generator[tuple[int, np.ndarray | None], None, None]:
        """Yield ``(frame index, merged index mask (H, W) uint8)`` from ``start`` to the last frame (or to
        frame 0 with ``reverse``), one frame per turn of the lock. The mask is None for a frame that no
        object has reached yet in this direction (no mask given at or before it in walk order): the
        engine says nothing about it. Closing the iterator cancels the run; the frames already yielded
        keep their results."""
        results = self._predictor.propagate(self._session, start=start, reverse=reverse)
        try:
            while True:
                with self._engine.lock:
                    try:
                        idx, result = next(results)
                    except StopIteration:
                        return
                yield idx, np.asarray(result.mask, dtype=np.uint8) if result.object_ids else None
        finally:
            with self._engine.lock:
                results.close()
