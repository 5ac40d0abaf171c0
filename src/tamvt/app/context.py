"""What one app server holds: its settings, the model, the cache of decoded videos and the sessions;
and the ways a session starts (the demo video, a file under ``--root``, an upload)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from tamvt.app.engine import Engine
from tamvt.app.errors import AppError
from tamvt.app.media import VideoCache, check_name, resolve_under, sniff_video
from tamvt.app.sessions import AppSession, SessionStore
from tamvt.app.settings import AppSettings
from tamvt.data.video import VIDEO_SUFFIXES

DEMO_NAME = "demo (synthetic, 48 frames)"
MAX_LISTED = 500  # files listed from --root


class AppContext:
    """The state of one server; ``engine`` may be given (tests share one model between servers)."""

    def __init__(self, settings: AppSettings, engine: Engine | None = None) -> None:
        self.settings = settings
        self.engine = engine or Engine(settings.checkpoint, settings.device)
        self.videos = VideoCache(settings.cache_bytes)
        self.sessions = SessionStore(
            settings.max_sessions, settings.idle_seconds, on_close=lambda s: self.videos.release(s.video)
        )
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
        return self._new_session("demo", folder.name, folder)

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
        return self._new_session(f"path:{path}:{st.st_mtime_ns}:{st.st_size}", relative, path)

    def open_upload(self, file: Path, name: str, digest: str) -> AppSession:
        """A session on an uploaded video ``file`` (already checked by content). The file is kept, named by its
        digest, while the video is cached: the decoded frames come back from it when a session opens the
        video again after the last one closed (the cache deletes it when it drops the video)."""
        key = f"upload:{digest}"
        try:
            check_name(name, "file name")
            kept = file.with_name(f".video-{digest}")
            os.replace(file, kept)
        finally:
            file.unlink(missing_ok=True)
        try:
            return self._new_session(key, name, kept, owns=True)
        except BaseException:
            if key not in self.videos:
                kept.unlink(missing_ok=True)
            raise

    def _new_session(self, key: str, name: str, path: Path, owns: bool = False) -> AppSession:
        sid = self.sessions.reserve()
        video = self.videos.open(key, name, path, self.settings.max_video_bytes, owns)
        try:
            session = AppSession(sid, video, self.engine.open(video.frames), self.settings.max_objects)
        except BaseException:
            self.videos.release(video)
            raise
        self.sessions.add(session)
        return session
