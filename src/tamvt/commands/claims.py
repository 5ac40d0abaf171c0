"""How the processes of ``tamvt batch`` share its list: one claim file per entry, created atomically, that
names the run and process holding the entry and its status; and ``summary.csv``, rebuilt from the
claims of the run after every entry."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import socket
import time
from pathlib import Path

from tamvt.commands.manifest import Entry

STATUSES = ("done", "skipped", "failed")


class Claims:
    """``OUT/.<name>.claim`` files: one JSON record per entry naming the run and process that took it
    and the entry's status. Created with ``os.link`` of a complete file, so a claim is never seen half
    written and only one process can create it."""

    def __init__(self, out: Path, run_id: str) -> None:
        self.out, self.run_id = out, run_id
        self.host, self.pid = socket.gethostname(), os.getpid()
        self._final: dict[str, dict] = {}

    def path(self, name: str) -> Path:
        return self.out / f".{name}.claim"

    def read(self, name: str) -> dict | None:
        try:
            record = json.loads(self.path(name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def final(self, name: str) -> dict | None:
        """The entry's record when this run has finished it (done / skipped / failed), else None.
        Kept once read: a finished record of this run never changes, so a summary rewritten after
        every entry reads only the unfinished ones again."""
        record = self._final.get(name)
        if record is None:
            record = self.read(name)
            if record is None or record.get("run") != self.run_id or record.get("status") not in STATUSES:
                return None
            self._final[name] = record
        return record

    def _record(self, status: str, **fields) -> dict:
        return {"run": self.run_id, "host": self.host, "pid": self.pid, "status": status, **fields}

    def _live(self, record: dict) -> bool:
        from tamvt.commands.output import pid_alive

        if record.get("status") != "running":
            return False
        if record.get("host") != self.host:
            return True  # another machine's process: cannot tell, so it counts as running
        return pid_alive(int(record.get("pid", 0)))

    def claim(self, name: str) -> str:
        """``"mine"`` when this process now holds the entry; ``"taken"`` when this run's other process
        does; ``"busy"`` when a running process of another run does."""
        path = self.path(name)
        for _ in range(3):
            if self._create(path, json.dumps(self._record("running"))):
                return "mine"
            old = self.read(name)
            if old is None:
                time.sleep(0.05)  # not written through link: an unreadable leftover; retried, then left
                continue
            if old.get("run") == self.run_id:
                return "taken"
            if self._live(old):
                return "busy"
            self._take_over(path, old)
        return "busy"

    def _create(self, path: Path, text: str) -> bool:
        """Create ``path`` holding ``text`` unless it exists: a hard link of a complete file, or where the
        file system has no hard links an exclusive create (then a reader may meet it empty for a moment
        and retries)."""
        tmp = path.with_name(f"{path.name}.{self.pid}.tmp")
        tmp.write_text(text, encoding="utf-8")
        try:
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
        except OSError:  # no hard links here
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            return True
        finally:
            tmp.unlink(missing_ok=True)

    def _take_over(self, path: Path, old: dict) -> None:
        """Remove the finished or dead claim ``old`` of an earlier run. Moved aside first, so of two
        processes taking it over only one removes it; one that moved a fresh claim instead puts it back."""
        aside = path.with_name(f"{path.name}.{self.pid}.old")
        try:
            os.replace(path, aside)
        except FileNotFoundError:
            return
        try:
            moved = json.loads(aside.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            moved = None
        if moved is not None and moved != old:  # someone's new claim: back where it was
            with contextlib.suppress(OSError):  # exists again: that one stays
                os.link(aside, path)
        aside.unlink(missing_ok=True)

    def finish(self, name: str, status: str, frames: int, seconds: float, error: str = "") -> None:
        from tamvt.atomic import write_text_atomic

        record = self._record(status, frames=frames, seconds=round(seconds, 3), error=error)
        write_text_atomic(self.path(name), json.dumps(record))


# ---- the summary -------------------------------------------------------------------------------------


def write_summary(out: Path, entries: list[Entry], claims: Claims, notes: dict[str, dict]) -> dict[str, int]:
    """Rewrite ``OUT/summary.csv`` (atomically, under a lock between processes) from this run's claims;
    ``notes``: this process's rows for entries it could not claim. Returns the count of each status."""
    from tamvt.atomic import write_text_atomic

    counts = dict.fromkeys((*STATUSES, "pending"), 0)
    with SummaryLock(out):
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["name", "video", "status", "frames", "seconds", "error"])
        for e in entries:
            record = claims.final(e.name)
            if record is None:
                record = notes.get(e.name)
            status = record["status"] if record and record.get("status") in STATUSES else "pending"
            counts[status] += 1
            row = record if status != "pending" and record else {}
            writer.writerow(
                [e.name, str(e.video), status, row.get("frames", ""), row.get("seconds", ""), row.get("error", "")]
            )
        write_text_atomic(out / "summary.csv", buf.getvalue())
    return counts


class SummaryLock:
    """An exclusive ``flock`` on ``OUT/.summary.lock`` where the platform has one (none elsewhere):
    a process that read the claims before another's update must not write its summary after it."""

    def __init__(self, out: Path) -> None:
        self.path = out / ".summary.lock"
        self.fd: int | None = None

    def __enter__(self) -> None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: last writer wins
            return
        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o666)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)  # releases the lock
