"""Annotation sessions: one per opened video, each bounded (one video, one index mask per frame at most
twice: painted and propagated); and the propagation job of a session.

Every session is also on disk (:mod:`tamvt.app.store`, written as it changes). In memory there are at most
``max_sessions``: an idle one, or the least recently used one when room is needed, is put to disk (its
memory freed) and reopened from disk on its next use, with a notice saying why it was closed.

Masks are ``(H, W)`` uint8 index masks (0 = background, 1..max_objects). A frame's mask is the one
painted on it when there is one (an annotation), else the latest propagation result.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from tamvt.app.engine import EngineVideo
from tamvt.app.errors import AppError
from tamvt.app.media import Video
from tamvt.app.prompting import Proposal
from tamvt.app.store import SessionDisk
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

    def __init__(
        self, sid: str, video: Video, engine_video: EngineVideo, max_objects: int, disk: SessionDisk | None = None
    ) -> None:
        self.id = sid
        self.video = video
        self.engine_video = engine_video
        self.max_objects = max_objects
        self.annotations: dict[int, np.ndarray] = {}
        self.results: dict[int, np.ndarray] = {}
        self.dirty: set[int] = set()  # annotations the engine has not been given yet
        self.job: Job | None = None
        self.proposal: Proposal | None = None  # the Box / Click tools' latest proposal, memory only (prompting.py)
        self.disk = disk  # where it is saved (None: in memory only)
        self.notice = ""  # said once by info(): why the session was reopened from disk
        self.last_used = time.monotonic()
        self._jobs = 0
        self._lock = threading.Lock()

    @property
    def num_frames(self) -> int:
        return self.video.count

    @property
    def running(self) -> bool:
        return self.job is not None and self.job.state == "running"

    def restore(self, annotations: dict[int, np.ndarray], results: dict[int, np.ndarray]) -> None:
        """The masks of a session reopened from disk; the engine gets the painted ones at the next propagation
        (its memory is rebuilt then)."""
        self.annotations, self.results = annotations, results
        self.dirty = set(annotations)

    def save(self) -> None:
        """Write what is not on disk yet (the last batch of results) and the metadata."""
        if self.disk is not None:
            self.disk.flush(self.object_ids())

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
            if self.disk is not None:
                self.disk.write_mask("annotations", k, self.annotations[k])
                self.disk.write_meta(self.object_ids())

    def remove_annotation(self, k: int) -> None:
        """Drop the painted mask of frame ``k`` and, in the engine, that frame's place in the objects'
        memories (an object painted nowhere else leaves the engine). Frame ``k`` shows no mask until the
        next propagation reaches it."""
        self.check_frame(k)
        if self.running:
            raise AppError(409, "a propagation is running: cancel it before removing a painted frame")
        with self._lock:
            if k not in self.annotations:
                raise AppError(404, f"frame {k} is not painted")
            del self.annotations[k]
            self.dirty.discard(k)
            self.results.pop(k, None)
            self.engine_video.remove_annotation(k)
            if self.disk is not None:  # a reopened session must not bring the painting back
                self.disk.remove_frame(k)
                self.disk.write_meta(self.object_ids())

    def propagate(self, start: int, direction: str) -> Job:
        """Start propagating from frame ``start`` in a thread; the painted frames go to the engine first."""
        self.check_frame(start)
        if direction not in DIRECTIONS:
            raise AppError(400, f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
        with self._lock:
            if self.running:
                raise AppError(409, "a propagation is already running: wait for it or cancel it")
            if not any(m.any() for m in self.annotations.values()) and not self.engine_video.objects:
                raise AppError(400, "nothing to propagate: paint at least one object on a frame first")
            for k in sorted(self.dirty):
                self.engine_video.annotate(k, self.annotations[k])
            self.dirty.clear()
            if not self.engine_video.objects:
                raise AppError(400, "nothing to propagate: every painted mask is empty")
            n = self.num_frames
            total = {"forward": n - start, "backward": start + 1, "both": n}[direction]  # both: start counted once
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
                            if self.disk is not None:
                                self.disk.add_result(idx, mask)
                        if not (reverse and job.direction == "both" and idx == job.start):  # done going forward
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
        finally:
            try:
                self.save()
            except AppError as err:  # the results stay in memory; the page is told they are not saved
                job.message, job.state = str(err), "failed"

    def cancel(self, wait: float = 0.0) -> None:
        job = self.job
        if job is not None and job.state == "running":
            job.cancel.set()
            if wait and job.thread is not None:
                job.thread.join(wait)

    def delete_object(self, obj: int) -> None:
        """Remove object ``obj`` from every mask and from the engine."""
        if self.running:
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
                        if self.disk is not None:
                            self.disk.write_mask("annotations" if store is self.annotations else "results", k, mask)
            self.engine_video.remove_object(obj)
        self.save()

    def info(self) -> dict:
        from tamvt.data.palette import palette_colors

        h, w = self.video.size
        colors = palette_colors(None)[: self.max_objects + 1].tolist()
        notice, self.notice = self.notice, ""
        return {
            "id": self.id,
            "video": {
                "key": self.video.key,
                "name": self.video.name,
                "frames": self.num_frames,
                "width": w,
                "height": h,
                "fps": self.video.fps,
                "seconds": self.video.duration,
                "variable_rate": self.video.times is not None,
                "notices": self.video.notices,
            },
            "max_objects": self.max_objects,
            "colors": colors,
            "objects": self.object_ids(),
            "annotated": sorted(self.annotations),
            "results": sorted(self.results),
            "job": self.job.summary() if self.job else None,
            "notice": notice,
        }


REASONS = {
    "idle": "this session was put to disk after {minutes:g} minutes unused; reopened from disk",
    "room": "this session was put to disk to make room for another (at most {max} open at once); reopened from disk",
    "closed": "this session was put to disk when its page opened another video; reopened from disk",
}
RESTARTED = "the server restarted since this session was last used; reopened from disk"
ALIVE_SECONDS = 180.0  # a page that sent a keep-alive this recently is open (the page sends one a minute)


class SessionStore:
    """The sessions in memory: at most ``max_sessions``. One unused for ``idle_seconds``, or the least
    recently used one without a running propagation when room is needed, is put to disk (``on_close``
    releases its video) and reopened by ``reopen(sid)`` at its next use."""

    def __init__(self, max_sessions: int, idle_seconds: float, on_close, reopen=None) -> None:
        self.max_sessions = max_sessions
        self.idle_seconds = idle_seconds
        self._on_close = on_close  # called with each closed session (releases its video)
        self._reopen = reopen  # sid -> AppSession from disk (a 404 AppError when there is none)
        self._sessions: dict[str, AppSession] = {}
        self._gone: dict[str, str] = {}  # sid -> why it was put to disk (a key of REASONS)
        self._alive: dict[str, float] = {}  # sid -> last keep-alive of a page (monotonic)
        self._lock = threading.Lock()
        self._open_lock = threading.RLock()  # one reopen at a time (each may put another session to disk)

    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, sid: str) -> bool:
        return sid in self._sessions

    def make_room(self) -> None:
        """Room for one more session: the idle ones go to disk, then the least recently used without a running
        propagation; a 429 only when every open session is propagating."""
        self.evict_idle()
        while len(self._sessions) >= self.max_sessions:
            waiting = [s for s in list(self._sessions.values()) if not s.running]
            if not waiting:
                raise AppError(
                    429,
                    f"all {self.max_sessions} open sessions are propagating: wait for one to finish "
                    "(or start the app with a larger --max-sessions)",
                )
            self.close(min(waiting, key=lambda s: s.last_used).id, "room")

    def reserve(self) -> str:
        """A fresh session id, after making room for one more session."""
        self.make_room()
        return secrets.token_hex(8)

    def add(self, session: AppSession) -> None:
        with self._lock:
            self._sessions[session.id] = session
            self._gone.pop(session.id, None)

    def get(self, sid: str) -> AppSession:
        """The session ``sid``; one put to disk is reopened (``session.notice`` says why it was closed)."""
        session = self._sessions.get(sid)
        if session is None:
            if self._reopen is None:
                raise AppError(404, "this session is closed")
            with self._open_lock:
                session = self._sessions.get(sid)
                if session is None:
                    reason = self._gone.get(sid)
                    session = self._reopen(sid)
                    minutes = round(self.idle_seconds / 60, 1)
                    why = REASONS[reason].format(minutes=minutes, max=self.max_sessions) if reason else RESTARTED
                    session.notice = why
                    self.add(session)
        session.touch()
        return session

    def alive(self, sid: str) -> tuple[bool, str]:
        """A page's keep-alive: the session stays in memory (it counts as use) and, on disk, is kept by the
        disk budget. Returns (in memory, a notice for the page): a session on disk is reopened by the page's
        next action; one reopened meanwhile says why it had been closed."""
        self._alive[sid] = time.monotonic()
        session = self._sessions.get(sid)
        if session is not None:
            session.touch()
            notice, session.notice = session.notice, ""
            return True, notice
        reason = self._gone.get(sid)
        why = REASONS[reason].split(";")[0] if reason else "the server restarted since this session was last used"
        minutes = round(self.idle_seconds / 60, 1)
        return False, why.format(minutes=minutes, max=self.max_sessions) + "; your next action reopens it from disk"

    def pages_open(self, now: float | None = None) -> set[str]:
        """The sessions a page has sent a keep-alive for lately."""
        now = time.monotonic() if now is None else now
        for sid, t in list(self._alive.items()):
            if now - t > ALIVE_SECONDS:
                self._alive.pop(sid, None)
        return set(self._alive)

    def ids(self) -> set[str]:
        return set(self._sessions)

    def values(self) -> list[AppSession]:
        return list(self._sessions.values())

    def close(self, sid: str, reason: str = "closed") -> None:
        """Put session ``sid`` to disk and free its memory (its propagation is cancelled)."""
        with self._lock:
            session = self._sessions.pop(sid, None)
        if session is None:
            return
        session.cancel(wait=5.0)
        # a failed write is logged by the store; the session goes anyway (its painted masks were saved as
        # they were sent, and the page was told of any that could not be)
        with contextlib.suppress(AppError):
            session.save()
        self._gone[sid] = reason
        self._on_close(session)
        del session
        release_memory()

    def evict_idle(self, now: float | None = None) -> list[str]:
        """Put the sessions unused for ``idle_seconds`` to disk (a running propagation counts as use)."""
        now = time.monotonic() if now is None else now
        idle = [s.id for s in list(self._sessions.values()) if now - s.last_used > self.idle_seconds]
        for sid in idle:
            self.close(sid, "idle")
        return idle

    def close_all(self) -> None:
        for sid in list(self._sessions):
            self.close(sid)


def release_memory() -> None:
    """Give freed memory back to the system: the engine's tensors and a video's frames are large blocks that
    glibc may keep in its heap after they are freed (the process's RSS would never fall)."""
    gc.collect()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):  # not glibc (musl): nothing to trim
            ctypes.CDLL("libc.so.6").malloc_trim(0)
