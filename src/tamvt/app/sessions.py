"""Annotation sessions: one per open page, each bounded (one video, one index mask per frame at most
twice: painted and propagated), closed after an idle time; and the propagation job of a session.

Masks are ``(H, W)`` uint8 index masks (0 = background, 1..max_objects). A frame's mask is the one
painted on it when there is one (an annotation), else the latest propagation result.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from tamvt.app.engine import EngineVideo
from tamvt.app.errors import AppError
from tamvt.app.media import Video
from tamvt.errors import TamvtError

log = logging.getLogger("tamvt.app")

DIRECTIONS = ("forward", "backward", "both")


@dataclass(eq=False)
class Job:
    """One propagation from ``start``: ``done`` lists the frames finished so far, in order."""

    id: int
    start: int
    direction: str
    total: int
    done: list[int] = field(default_factory=list)
    unreached: int = 0  # frames no object reached (no painted frame before them in this direction)
    state: str = "running"  # running | finished | cancelled | failed
    message: str = ""
    cancel: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def summary(self) -> dict:
        return {
            "id": self.id,
            "start": self.start,
            "direction": self.direction,
            "total": self.total,
            "done": len(self.done),
            "state": self.state,
            "message": self.message,
        }


class AppSession:
    """The state of one page: its video, the painted and propagated masks, the engine session, the job."""

    def __init__(self, sid: str, video: Video, engine_video: EngineVideo, max_objects: int) -> None:
        self.id = sid
        self.video = video
        self.engine_video = engine_video
        self.max_objects = max_objects
        self.annotations: dict[int, np.ndarray] = {}
        self.results: dict[int, np.ndarray] = {}
        self.dirty: set[int] = set()  # annotations the engine has not been given yet
        self.job: Job | None = None
        self.last_used = time.monotonic()
        self._jobs = 0
        self._lock = threading.Lock()

    @property
    def num_frames(self) -> int:
        return len(self.video.frames)

    def touch(self) -> None:
        self.last_used = time.monotonic()

    def check_frame(self, k: int) -> int:
        if not 0 <= k < self.num_frames:
            raise AppError(404, f"frame {k} out of range: the video has {self.num_frames} frames")
        return k

    def mask(self, k: int) -> tuple[np.ndarray | None, str]:
        """Frame ``k``'s mask and where it comes from: ``"annotation"``, ``"result"`` or ``"none"``."""
        self.check_frame(k)
        if k in self.annotations:
            return self.annotations[k], "annotation"
        if k in self.results:
            return self.results[k], "result"
        return None, "none"

    def object_ids(self) -> list[int]:
        ids = set(self.engine_video.objects)
        for mask in self.annotations.values():
            ids.update(int(v) for v in np.unique(mask) if v)
        return sorted(ids)

    def set_annotation(self, k: int, mask: np.ndarray) -> None:
        """Make ``mask`` the painted mask of frame ``k`` (given to the engine at the next propagation)."""
        self.check_frame(k)
        with self._lock:
            self.annotations[k] = np.ascontiguousarray(mask, dtype=np.uint8).copy()
            self.dirty.add(k)

    def remove_annotation(self, k: int) -> None:
        """Drop the painted mask of frame ``k`` and, in the engine, that frame's place in the objects'
        memories (an object painted nowhere else leaves the engine). Frame ``k`` shows no mask until the
        next propagation reaches it."""
        self.check_frame(k)
        if self.job is not None and self.job.state == "running":
            raise AppError(409, "a propagation is running: cancel it before removing a painted frame")
        with self._lock:
            if k not in self.annotations:
                raise AppError(404, f"frame {k} is not painted")
            del self.annotations[k]
            self.dirty.discard(k)
            self.results.pop(k, None)
            self.engine_video.remove_annotation(k)

    def propagate(self, start: int, direction: str) -> Job:
        """Start propagating from frame ``start`` in a thread; the painted frames go to the engine first."""
        self.check_frame(start)
        if direction not in DIRECTIONS:
            raise AppError(400, f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
        with self._lock:
            if self.job is not None and self.job.state == "running":
                raise AppError(409, "a propagation is already running: wait for it or cancel it")
            if not any(m.any() for m in self.annotations.values()) and not self.engine_video.objects:
                raise AppError(400, "nothing to propagate: paint at least one object on a frame first")
            for k in sorted(self.dirty):
                self.engine_video.annotate(k, self.annotations[k])
            self.dirty.clear()
            if not self.engine_video.objects:
                raise AppError(400, "nothing to propagate: every painted mask is empty")
            n = self.num_frames
            total = {"forward": n - start, "backward": start + 1, "both": n + 1}[direction]
            self._jobs += 1
            job = Job(self._jobs, start, direction, total)
            job.thread = threading.Thread(target=self._run, args=(job,), name=f"propagate-{self.id}", daemon=True)
            self.job = job
            job.thread.start()
            return job

    def _run(self, job: Job) -> None:
        legs = {"forward": [False], "backward": [True], "both": [False, True]}[job.direction]
        try:
            for reverse in legs:
                frames = self.engine_video.propagate(job.start, reverse)
                try:
                    for idx, mask in frames:
                        if mask is None:  # nothing to say about this frame: its earlier result stays
                            job.unreached += 1
                        else:
                            self.results[idx] = mask
                        job.done.append(idx)
                        self.touch()
                        if job.cancel.is_set():
                            break
                finally:
                    frames.close()
                if job.cancel.is_set():
                    break
            job.state = "cancelled" if job.cancel.is_set() else "finished"
            if job.unreached:
                job.message = (
                    f"{job.unreached} frame(s) had no painted frame before them in this direction "
                    "and kept their masks: paint the frame you propagate from"
                )
        except TamvtError as err:
            job.message, job.state = str(err), "failed"
        except Exception as err:
            log.exception("propagation failed")
            job.message, job.state = f"internal error ({err.__class__.__name__}); see the server log", "failed"

    def cancel(self, wait: float = 0.0) -> None:
        job = self.job
        if job is not None and job.state == "running":
            job.cancel.set()
            if wait and job.thread is not None:
                job.thread.join(wait)

    def delete_object(self, obj: int) -> None:
        """Remove object ``obj`` from every mask and from the engine."""
        if self.job is not None and self.job.state == "running":
            raise AppError(409, "a propagation is running: cancel it before deleting an object")
        with self._lock:
            for store in (self.annotations, self.results):
                for k, mask in store.items():
                    if (mask == obj).any():
                        mask = mask.copy()
                        mask[mask == obj] = 0
                        store[k] = mask
                        if store is self.annotations:
                            self.dirty.add(k)
            self.engine_video.remove_object(obj)

    def info(self) -> dict:
        from tamvt.data.palette import palette_colors

        h, w = self.video.size
        colors = palette_colors(None)[: self.max_objects + 1].tolist()
        return {
            "id": self.id,
            "video": {
                "key": self.video.key,
                "name": self.video.name,
                "frames": self.num_frames,
                "width": w,
                "height": h,
                "fps": self.video.fps,
            },
            "max_objects": self.max_objects,
            "colors": colors,
            "objects": self.object_ids(),
            "annotated": sorted(self.annotations),
            "results": sorted(self.results),
            "job": self.job.summary() if self.job else None,
        }


class SessionStore:
    """The open sessions: at most ``max_sessions``; one unused for ``idle_seconds`` is closed."""

    def __init__(self, max_sessions: int, idle_seconds: float, on_close) -> None:
        self.max_sessions = max_sessions
        self.idle_seconds = idle_seconds
        self._on_close = on_close  # called with each closed session (releases its video)
        self._sessions: dict[str, AppSession] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._sessions)

    def reserve(self) -> str:
        """A fresh session id, after making sure there is room for one more session (else a 429)."""
        self.evict_idle()
        if len(self._sessions) >= self.max_sessions:
            raise AppError(
                429,
                f"too many open sessions ({self.max_sessions}): close another page, or wait "
                f"{self.idle_seconds / 60:.0f} min for an unused one to be closed",
            )
        return secrets.token_hex(8)

    def add(self, session: AppSession) -> None:
        with self._lock:
            self._sessions[session.id] = session

    def get(self, sid: str) -> AppSession:
        session = self._sessions.get(sid)
        if session is None:
            raise AppError(404, "this session is closed (unused too long, or the server restarted): reload the page")
        session.touch()
        return session

    def close(self, sid: str) -> None:
        with self._lock:
            session = self._sessions.pop(sid, None)
        if session is not None:
            session.cancel(wait=5.0)
            self._on_close(session)

    def evict_idle(self, now: float | None = None) -> list[str]:
        """Close the sessions unused for ``idle_seconds`` (a running propagation counts as use)."""
        now = time.monotonic() if now is None else now
        idle = [s.id for s in list(self._sessions.values()) if now - s.last_used > self.idle_seconds]
        for sid in idle:
            self.close(sid)
        return idle

    def close_all(self) -> None:
        for sid in list(self._sessions):
            self.close(sid)
