"""What one app server holds: its settings, the model, the cache of decoded videos, the sessions in memory
and on disk; and the ways a session starts (the demo video, a file under ``--root``, an upload, reopened from
disk)."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

from tamvt.app.engine import Engine
from tamvt.app.errors import AppError
from tamvt.app.media import VideoCache, resolve_under, sniff_video
from tamvt.app.prompting import Prompter
from tamvt.app.sessions import AppSession, SessionStore
from tamvt.app.settings import AppSettings
from tamvt.app.store import DiskStore, Source
from tamvt.data.video import VIDEO_SUFFIXES
from tamvt.prompts import PromptModel

DEMO_NAME = "demo (synthetic, 48 frames)"
MAX_LISTED = 500  # files listed from --root
UPLOAD_GRACE_SECONDS = 600  # an upload this young is never swept: its session may still be opening


class AppContext:
    """The state of one server; ``engine`` may be given (tests share one model between servers), and
    ``prompt_model`` (``tamvt app`` builds it before serving: an unusable one fails at start)."""

    def __init__(
        self, settings: AppSettings, engine: Engine | None = None, prompt_model: PromptModel | None = None
    ) -> None:
        self.settings = settings
        self.engine = engine or Engine(settings.checkpoint, settings.device)
        self.prompter = Prompter(settings.prompt_model, settings.device, prompt_model)
        self.videos = VideoCache(settings.cache_bytes)
        self.sessions = SessionStore(
            settings.max_sessions,
            settings.idle_seconds,
            on_close=lambda s: self.videos.release(s.video, drop=True),
            reopen=self.reopen,
        )
        self.disk = DiskStore(settings.workdir / "sessions", settings.keep_days * 86400, settings.max_disk_bytes)
        self._demo_lock = threading.Lock()

    # ---- sources ---------------------------------------------------------------------------------

    def demo_folder(self) -> Path:
        """The demo video's frame folder (rendered into the work folder on first use)."""
        from tamvt.data.synthetic import preset_suite
        from tamvt.data.synthetic.dataset import write_dataset

        out = self.settings.workdir / "demo"
        with self._demo_lock:
            frames = out / "JPEGImages" / "480p"
            if not frames.is_dir():
                write_dataset(out, preset_suite("demo"), overwrite=True, progress=False)
            return next(p for p in sorted(frames.iterdir()) if p.is_dir())

    def list_sources(self) -> list[dict]:
        """What the page can open: the demo, then the videos and frame folders under ``--root``."""
        out = [{"source": "demo", "name": DEMO_NAME}] if self.settings.demo else []
        root = self.settings.root
        if root is None:
            return out
        base = root.resolve()
        for folder, dirs, files in os.walk(base):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            rel = Path(folder).relative_to(base)
            if len(rel.parts) >= 3:
                dirs[:] = []
            images = [f for f in files if f.lower().endswith((".jpg", ".jpeg", ".png"))]
            if images and rel.parts:
                out.append(
                    {"source": "path", "path": rel.as_posix(), "name": f"{rel.as_posix()}/ ({len(images)} frames)"}
                )
            for f in sorted(files):
                if not f.startswith(".") and f.lower().endswith(VIDEO_SUFFIXES):
                    out.append({"source": "path", "path": (rel / f).as_posix(), "name": (rel / f).as_posix()})
            if len(out) > MAX_LISTED:
                break
        return out[:MAX_LISTED]

    # ---- sessions --------------------------------------------------------------------------------

    def open_demo(self) -> AppSession:
        if not self.settings.demo:
            raise AppError(404, "the demo video is off on this server")
        folder = self.demo_folder()
        return self._new_session(Source("demo", str(folder), folder.name), folder)

    def open_path(self, relative: str) -> AppSession:
        path = resolve_under(self.settings.root, relative)
        if path.is_file():
            with open(path, "rb") as f:
                if sniff_video(f.read(16)) is None:
                    raise AppError(
                        415,
                        f"{relative[:120]!r} is not a video file (MP4 / MOV, WebM / MKV or AVI, judged by its content)",
                    )
        st = path.stat()
        size = st.st_size if path.is_file() else 0
        return self._new_session(Source("path", str(path), relative, size, st.st_mtime_ns), path)

    def open_upload(self, file: Path, name: str, digest: str) -> AppSession:
        """A session on an uploaded video ``file`` (already checked by content). It is kept as
        ``uploads/<sha256><suffix>``: a reopened session, or a session whose decoded frames were dropped, decodes
        it again; a file that does not decode is deleted (unless the same video was uploaded before)."""
        kept = file.with_name(digest + Path(name).suffix.lower())  # the name was checked by the route
        source = Source("upload", str(kept), name, file.stat().st_size, 0, digest)
        existed = kept.exists()  # the same video uploaded before: its sessions may be in Recent
        os.replace(file, kept)
        os.utime(kept)  # young again: the sweep of unused uploads leaves it alone while it opens
        try:
            return self._new_session(source, kept)
        except BaseException:
            if not existed:
                kept.unlink(missing_ok=True)
            raise

    def _new_session(self, source: Source, path: Path) -> AppSession:
        sid = self.sessions.reserve()
        video = self.videos.open(source.key, source.name, path, self.settings.max_video_bytes)
        try:
            session = AppSession(sid, video, self.engine.open(video.frames), self.settings.max_objects)
            session.disk = self.disk.create(sid, source, session.num_frames, video.size)
        except BaseException:
            self.videos.release(video)
            raise
        self.sessions.add(session)
        return session

    def reopen(self, sid: str) -> AppSession:
        """Session ``sid`` from disk: its video decoded again, its masks restored (the engine's memory is rebuilt
        by the next propagation); a 404 when there is none, a 409 when its video changed or is gone."""
        disk = self.disk.open(sid)
        if disk is None:
            raise AppError(
                404,
                f"no session {sid} on this server: it was never saved here, or it was removed after "
                f"{self.settings.keep_days:g} days unused (--keep-days); open the video again",
            )
        source = self.disk.source(disk)
        path = self.demo_folder() if source.kind == "demo" else Path(source.path)
        problem = None if source.kind == "demo" else source.changed()
        if problem:
            raise AppError(409, f"cannot reopen this session: {problem}")
        self.sessions.make_room()
        video = self.videos.open(source.key, source.name, path, self.settings.max_video_bytes)
        try:
            if len(video.frames) != disk.meta["frames"] or list(video.size) != list(disk.meta["size"]):
                raise AppError(409, f"cannot reopen this session: its video {source.name!r} decodes differently now")
            session = AppSession(sid, video, self.engine.open(video.frames), self.settings.max_objects, disk)
            session.restore(*disk.load())
        except BaseException:
            self.videos.release(video, drop=True)
            raise
        return session

    def recent(self, limit: int = 50) -> list[dict]:
        """The saved sessions, the most recently changed first: id, name, frames, objects, last change."""
        open_ids = self.sessions.ids()
        return [
            {
                "id": m["id"],
                "name": m.get("name", "?"),
                "frames": m.get("frames", 0),
                "objects": len(m.get("objects", [])),
                "changed": m.get("changed", 0),
                "open": m["id"] in open_ids,
            }
            for m in self.disk.saved()[:limit]
        ]

    def prune(self) -> list[str]:
        """Apply the disk budget (``--keep-days``, ``--max-disk-mb``), then delete the uploads and exports that no
        saved session refers to any more."""
        saved = self.disk.saved()
        removed = self.disk.prune(self.sessions.ids() | self.sessions.pages_open(), saved=saved)
        used = {
            m["source"].get("path")
            for m in saved
            if m["id"] not in removed and m.get("source", {}).get("kind") == "upload"
        }
        uploads = self.settings.workdir / "uploads"
        recent = time.time() - UPLOAD_GRACE_SECONDS  # an upload being opened has no session.json yet
        if uploads.is_dir():
            for f in uploads.iterdir():
                if not f.name.startswith(".") and str(f) not in used and f.stat().st_mtime < recent:
                    f.unlink(missing_ok=True)
        for sid in removed:
            export = self.settings.workdir / "exports" / sid
            if export.is_dir():
                shutil.rmtree(export, ignore_errors=True)
        return removed
