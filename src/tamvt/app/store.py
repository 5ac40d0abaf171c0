"""Sessions on disk: every session of a server is kept under ``<workdir>/sessions/<id>/`` so that a server
restart, an idle eviction or opening another video loses no work.

    session.json          id, name, the video's identity (source, path, size, mtime, sha256), frame count and size,
                          the objects, created / changed / opened times (seconds since the epoch)
    annotations/<k>.z     the mask painted on frame k: ``(H, W)`` uint8 ids, zlib-compressed (level 1)
    results/<k>.z         frame k's latest propagation result, the same way

Each file is written atomically (:func:`tamvt.atomic.atomic_path`) when it changes: a painted mask at once,
propagation results in batches (:class:`SessionDisk`), so a crash loses at most the last batch of results
and never a half-written file. The disk budget (:meth:`DiskStore.prune`) removes whole sessions, the ones
untouched longest first, never one that is open in memory or has a page open.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tamvt.app.errors import AppError
from tamvt.atomic import atomic_path, write_text_atomic

log = logging.getLogger("tamvt.app")

KINDS = ("annotations", "results")


@dataclass(frozen=True)
class Source:
    """Where a session's video comes from, and how to tell it is still the same file.

    ``kind``: ``"demo"``, ``"path"`` (a file or frame folder under ``--root``) or ``"upload"`` (kept under
    ``<workdir>/uploads/``); ``size`` and ``mtime_ns`` of the file (0 for folders), ``sha256`` of an upload.
    """

    kind: str
    path: str
    name: str
    size: int = 0
    mtime_ns: int = 0
    sha256: str = ""

    @property
    def key(self) -> str:
        """The video cache's key: one decode per identical source."""
        if self.kind == "demo":
            return "demo"
        if self.kind == "upload":
            return f"upload:{self.sha256}"
        return f"path:{self.path}:{self.mtime_ns}:{self.size}"

    def changed(self) -> str | None:
        """Why the file no longer matches (a message), or None when it is the same."""
        if self.kind == "demo":
            return None
        path = Path(self.path)
        if not path.exists():
            return f"its video {self.name!r} is no longer on the server ({path})"
        if path.is_file():
            st = path.stat()
            if st.st_size != self.size or (self.kind == "path" and st.st_mtime_ns != self.mtime_ns):
                return f"its video {self.name!r} changed on the server since the session was saved"
        return None


def _encode(mask: np.ndarray) -> bytes:
    return zlib.compress(np.ascontiguousarray(mask, dtype=np.uint8).tobytes(), 1)


def _decode(data: bytes, size: tuple[int, int]) -> np.ndarray:
    return np.frombuffer(zlib.decompress(data), dtype=np.uint8).reshape(size).copy()


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _upload_bytes(meta: dict) -> int:
    """The size of the uploaded video a session keeps (counted in the disk budget with the session)."""
    source = meta.get("source", {})
    if source.get("kind") != "upload":
        return 0
    try:
        return Path(source["path"]).stat().st_size
    except (OSError, KeyError):
        return 0


class SessionDisk:
    """One session's folder: masks written as they change, results batched (at most every ``every`` frames
    or ``seconds``), the metadata rewritten with each write."""

    def __init__(self, folder: Path, meta: dict, every: int = 16, seconds: float = 2.0) -> None:
        self.folder = folder
        self.meta = meta
        self.every, self.seconds = every, seconds
        self._pending: dict[int, np.ndarray] = {}
        self._last_flush = time.monotonic()
        self._lock = threading.Lock()

    @property
    def id(self) -> str:
        return self.meta["id"]

    def _failed(self, err: OSError) -> AppError:
        log.error("cannot save session %s in %s: %s", self.id, self.folder, err)
        return AppError(507, f"cannot save the session in {self.folder} ({err.strerror or err}): free some disk space")

    def write_meta(self, objects: list[int] | None = None, changed: bool = True) -> None:
        with self._lock:
            if objects is not None:
                self.meta["objects"] = objects
            if changed:
                self.meta["changed"] = time.time()
            try:
                write_text_atomic(self.folder / "session.json", json.dumps(self.meta, indent=1))
            except OSError as err:
                raise self._failed(err) from None

    def write_mask(self, kind: str, k: int, mask: np.ndarray | None) -> None:
        """Write (or with None remove) frame ``k``'s mask of ``kind`` (``annotations`` / ``results``)."""
        path = self.folder / kind / f"{k:06d}.z"
        if mask is None:
            path.unlink(missing_ok=True)
            return
        try:
            with atomic_path(path) as tmp:
                tmp.write_bytes(_encode(mask))
        except OSError as err:
            raise self._failed(err) from None

    def remove_frame(self, k: int) -> None:
        """Forget frame ``k``'s painted mask and result (queued or written)."""
        self._pending.pop(k, None)
        self.write_mask("annotations", k, None)
        self.write_mask("results", k, None)

    def add_result(self, k: int, mask: np.ndarray) -> None:
        """Queue a propagation result; written when the batch is full or old enough (and at :meth:`flush`)."""
        self._pending[k] = mask
        if len(self._pending) >= self.every or time.monotonic() - self._last_flush >= self.seconds:
            self.flush()

    def flush(self, objects: list[int] | None = None) -> None:
        pending, self._pending = self._pending, {}
        for k, mask in pending.items():
            self.write_mask("results", k, mask)
        self._last_flush = time.monotonic()
        if pending or objects is not None:
            self.write_meta(objects)

    def load(self) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
        """``(annotations, results)``: frame -> ``(H, W)`` uint8 mask."""
        h, w = self.meta["size"]
        size = (int(h), int(w))
        out: list[dict[int, np.ndarray]] = []
        for kind in KINDS:
            masks = {}
            for path in sorted((self.folder / kind).glob("*.z")):
                try:
                    masks[int(path.stem)] = _decode(path.read_bytes(), size)
                except (ValueError, zlib.error) as err:
                    log.warning("skipping a damaged mask %s (%s)", path, err)
            out.append(masks)
        return out[0], out[1]


class DiskStore:
    """Every saved session of a server, under ``root`` (``<workdir>/sessions``)."""

    def __init__(self, root: Path, keep_seconds: float, max_bytes: int) -> None:
        self.root = root
        self.keep_seconds = keep_seconds
        self.max_bytes = max_bytes
        root.mkdir(parents=True, exist_ok=True)

    def create(self, sid: str, source: Source, frames: int, size: tuple[int, int]) -> SessionDisk:
        now = time.time()
        meta = {
            "id": sid,
            "name": source.name,
            "source": source.__dict__.copy(),
            "frames": frames,
            "size": list(size),
            "objects": [],
            "created": now,
            "changed": now,
            "opened": now,
        }
        disk = SessionDisk(self.root / sid, meta)
        disk.write_meta(changed=False)
        return disk

    def open(self, sid: str) -> SessionDisk | None:
        """The saved session ``sid``, or None when there is none (never saved, or removed by the budget)."""
        try:
            meta = json.loads((self.root / sid / "session.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        meta["opened"] = time.time()
        disk = SessionDisk(self.root / sid, meta)
        disk.write_meta(changed=False)
        return disk

    def exists(self, sid: str) -> bool:
        return (self.root / sid / "session.json").is_file()

    @staticmethod
    def source(disk: SessionDisk) -> Source:
        return Source(**disk.meta["source"])

    def saved(self) -> list[dict]:
        """The saved sessions' metadata, the most recently changed first."""
        out = []
        for path in self.root.glob("*/session.json"):
            try:
                out.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue
        return sorted(out, key=lambda m: m.get("changed", 0), reverse=True)

    def remove(self, sid: str) -> None:
        shutil.rmtree(self.root / sid, ignore_errors=True)

    def prune(self, keep: set[str], now: float | None = None, saved: list[dict] | None = None) -> list[str]:
        """Apply the disk budget: remove the sessions untouched for ``keep_seconds``, then, while the saved
        sessions take more than ``max_bytes``, the ones untouched longest; never one in ``keep`` (open in
        memory, or with a page open). ``saved``: :meth:`saved` when the caller has read it. Returns the
        removed ids."""
        now = time.time() if now is None else now
        saved = self.saved() if saved is None else saved
        metas = sorted(saved, key=lambda m: max(m.get("changed", 0), m.get("opened", 0)))
        sizes = {m["id"]: _folder_bytes(self.root / m["id"]) + _upload_bytes(m) for m in metas}
        total = sum(sizes.values())
        removed = []
        for m in metas:
            sid = m["id"]
            if sid in keep:
                continue
            if now - max(m.get("changed", 0), m.get("opened", 0)) > self.keep_seconds or total > self.max_bytes:
                self.remove(sid)
                total -= sizes[sid]
                removed.append(sid)
        if removed:
            log.info("disk budget: removed %d saved session(s)", len(removed))
        return removed
