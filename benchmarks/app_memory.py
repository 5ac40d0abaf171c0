"""Memory of `tamvt app` over a session's life: RSS idle, after two propagations, after both sessions close.

Starts `tamvt app` in a subprocess on a fresh work folder, opens two sessions through the HTTP API (the
demo video, and an upload of a synthetic video written here at ``--size`` with ``--frames`` frames), paints
a box on frame 0 of each, propagates each to the end, then closes both (they go to disk). The server's
resident memory (VmRSS from /proc) is read at each point; the last line gives the ratio after-close / idle
(the target: within 20 %).

    python benchmarks/app_memory.py                      # demo + a 150-frame 854x480 upload
    python benchmarks/app_memory.py --frames 300 --size 480 854
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def write_video(path: Path, frames: int, size: tuple[int, int]) -> None:
    """A moving bright square on a textured background."""
    from tamvt.data.video import VideoWriter

    h, w = size
    rng = np.random.default_rng(0)
    background = rng.integers(0, 120, (h, w, 3), dtype=np.uint8)
    with VideoWriter(path, fps=24) as writer:
        for t in range(frames):
            frame = background.copy()
            x = int((w - h // 4) * t / max(frames - 1, 1))
            frame[h // 3 : h // 3 + h // 4, x : x + h // 4] = (230, 200, 40)
            writer.write(frame)


def start_server(workdir: Path) -> tuple[subprocess.Popen, str, str]:
    cmd = [sys.executable, "-m", "tamvt.cli", "app", "--port", "0", "--workdir", str(workdir)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    found: list[re.Match] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            m = re.search(r"serving (http://[^/\s]+)/\?token=(\S+)", line)
            if m:
                found.append(m)
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(180) or not found:
        proc.kill()
        raise SystemExit("tamvt app did not start")
    return proc, found[0].group(1), found[0].group(2)


def propagate(client: httpx.Client, info: dict) -> None:
    sid, h, w = info["id"], info["video"]["height"], info["video"]["width"]
    mask = np.zeros((h, w), np.uint8)
    mask[h // 3 : h // 3 + h // 4, : h // 4] = 1  # where the square (or the demo's first object) starts
    client.put(f"/api/sessions/{sid}/masks/0", content=mask.tobytes()).raise_for_status()
    job = client.post(f"/api/sessions/{sid}/propagate", json={"frame": 0, "direction": "forward"}).json()
    with client.stream("GET", f"/api/sessions/{sid}/events?job={job['id']}", timeout=None) as r:
        events = [json.loads(line[5:]) for line in r.iter_lines() if line.startswith("data:")]
    if events[-1].get("state") != "finished":
        raise SystemExit(f"propagation did not finish: {events[-1]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=150, help="frames of the uploaded video (default 150)")
    parser.add_argument("--size", type=int, nargs=2, default=(480, 854), metavar=("H", "W"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tamvt-app-memory-") as tmp:
        video = Path(tmp) / "clip.mp4"
        write_video(video, args.frames, tuple(args.size))
        proc, url, token = start_server(Path(tmp) / "work")
        try:
            headers = {"Authorization": f"token {token}"}
            with httpx.Client(base_url=url, headers=headers, timeout=600) as client:
                time.sleep(2)
                idle = rss_mb(proc.pid)
                demo = client.post("/api/sessions", json={"source": "demo"}).json()
                upload = client.post(
                    "/api/sessions/upload", params={"name": video.name}, content=video.read_bytes()
                ).json()
                for info in (demo, upload):
                    propagate(client, info)
                after = rss_mb(proc.pid)
                for info in (demo, upload):
                    client.delete(f"/api/sessions/{info['id']}").raise_for_status()
                time.sleep(2)
                closed = rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(30)
    print(f"two sessions: the demo video and {args.frames} frames of {args.size[1]}x{args.size[0]}")
    print(f"RSS idle {idle:.0f} MB, after two propagations {after:.0f} MB, after closing both {closed:.0f} MB")
    print(f"after close / idle = {closed / idle:.3f} (target <= 1.20)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
