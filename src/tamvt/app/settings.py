"""The settings of one app server: where videos may come from, where exports go, and every limit."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

MB = 1 << 20


def new_token() -> str:
    """A fresh random access token (256 bits, URL-safe), as Jupyter's."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class AppSettings:
    """Limits and paths of an app server (``tamvt app`` builds it from its options).

    Attributes:
        checkpoint: the model (loaded once, shared by every session).
        workdir: the server's own folder, kept across restarts: the saved sessions (``sessions/``), the uploaded
            videos they use (``uploads/``), the demo video, exports when ``out`` is None.
        root: server-side videos may be opened only from under this folder; None: uploads only.
        out: exports are also kept here (``<video>-masks.zip`` ...); None: only downloaded.
        demo: offer the synthetic demo video (written into ``workdir`` at start).
        max_upload_bytes: largest accepted upload (video file or mask PNG).
        max_video_bytes: largest decoded video, ``frames x H x W x 3`` bytes.
        cache_bytes: decoded videos kept in memory, in all (the least recently used unpinned go first).
        max_sessions: sessions in memory at once; beyond, the least recently used is put to disk.
        idle_seconds: a session unused this long is put to disk and its memory freed.
        keep_days: a saved session untouched this long is deleted from disk.
        max_disk_bytes: the saved sessions (with their uploads) take at most this much disk; the ones untouched
            longest are deleted first (never one in memory or with a page open).
        max_objects: objects per video (ids 1..max_objects).
        device: torch device of the model (and of the prompt model).
        prompt_model: the model turning a box or clicks into a proposed mask (``--prompt-model``; a name of
            :func:`tamvt.prompts.prompt_model_names`).
        token: every request but ``/static/`` must carry it (``?token=``, then a cookie; or an
            ``Authorization: token ...`` header); random unless given; None: no token (loopback only,
            ``--no-token``). See :mod:`tamvt.app.security`.
        allowed_hosts: names a request's ``Host`` may carry besides ``127.0.0.1``, ``localhost`` and ``[::1]``
            (``--host`` and every ``--allow-host``); any other is refused (DNS rebinding).
    """

    checkpoint: Path
    workdir: Path
    root: Path | None = None
    out: Path | None = None
    demo: bool = True
    max_upload_bytes: int = 512 * MB
    max_video_bytes: int = 1024 * MB
    cache_bytes: int = 2048 * MB
    max_sessions: int = 8
    idle_seconds: float = 30 * 60
    keep_days: float = 30
    max_disk_bytes: int = 10240 * MB
    max_objects: int = 10
    device: str = "cpu"
    prompt_model: str = "grabcut"
    token: str | None = field(default_factory=new_token, repr=False)
    allowed_hosts: tuple[str, ...] = ()

    def export_folder(self, sid: str) -> Path:
        """Where session ``sid``'s exports go: ``--out``, else the work folder's ``exports/<sid>``."""
        return self.out if self.out is not None else self.workdir / "exports" / sid
