"""Soak: does a 10,000-frame video stream through tamvt in constant memory and at a constant speed?
(not a test)

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/soak.py [--frames 10000] [--size 96x128] [--every 500]
        [--runs cli,session,session-kept] [--work DIR] [--json FILE]

The video is synthetic (:mod:`tamvt.data.synthetic`, two objects, random events, a moving camera),
rendered lazily: one frame at a time, never the whole video in memory. The shipped model segments it
from frame 0's mask, three ways, each in its own process (so each peak is its own):

- ``cli``: ``tamvt segment VIDEO.mp4 --mask M --out DIR`` as a subprocess on the video written as an
  MP4 (decoded as it goes; one PNG per frame written). This script polls the child's ``VmRSS`` /
  ``VmHWM`` in ``/proc/<pid>/status`` and counts the masks in its temporary output folder to know
  the frame it is at.
- ``session``: the Python API, ``Predictor.from_checkpoint(shipped_model_path())``,
  ``predictor.start(frames, keep_results=False)``, ``add_index_mask``, ``propagate`` over a lazy
  frame source (``len`` + indexing, rendered on demand); the child reads its own ``VmRSS``.
- ``session-kept``: the same with ``keep_results=True``: the session stores every frame's merged mask
  (compressed) so that ``session.result(i)`` can return it; memory grows with those stored results
  by design, and this run measures by how much.

Every ``--every`` frames it records RSS and the wall and CPU seconds per frame of the last window
(CPU time is far less disturbed by other jobs on a shared machine). It prints, per run, the peak
RSS (``VmHWM``), RSS at frame 1,000 and at the end, the growth between them (target <= 5 %), and
the seconds per frame of the first and the last window.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RUNS = ("cli", "session", "session-kept")


def status_kib(pid: int | str, *fields: str) -> dict[str, int]:
    """``{field: KiB}`` of ``/proc/<pid>/status`` (``{}`` once the process is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return {}
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in fields:
            out[key] = int(value.split()[0])
    return out


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` so far (``None`` once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime: fields 14, 15


def synthetic_video(frames: int, size: tuple[int, int]):
    from tamvt.data.synthetic import LazyVideo, SynthConfig

    return LazyVideo(SynthConfig(size=size, length=frames, num_objects=2, events="random", seed=3, name="soak"))


class LazyFrames:
    """A synthetic video as a frame sequence (``len`` + ``frames[i]`` -> ``(H, W, 3)`` uint8), rendered
    on demand: what ``Predictor.start`` takes as in-memory frames, without holding them."""

    def __init__(self, video) -> None:
        self.video = video

    def __len__(self) -> int:
        return len(self.video)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.video.render(int(index))[0]


# ---- the session runs (child process) ----------------------------------------------------------------


def session_child(frames: int, size: tuple[int, int], every: int, keep: bool) -> None:
    """Runs in its own process; prints one JSON line per ``every`` frames, then the peak."""
    import torch

    from tamvt.checkpoint import shipped_model_path
    from tamvt.inference import Predictor

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    video = synthetic_video(frames, size)
    _, first_mask = video.render(0)
    predictor = Predictor.from_checkpoint(shipped_model_path(), device="cpu", short_side=None)
    session = predictor.start(LazyFrames(video), keep_results=keep)
    predictor.add_index_mask(session, 0, first_mask)
    start = last = time.perf_counter()
    last_cpu, last_done = time.process_time(), 0
    for done, _ in enumerate(predictor.propagate(session), start=1):
        if done % every == 0 or done == frames:
            now, cpu = time.perf_counter(), time.process_time()
            rss = status_kib("self", "VmRSS")["VmRSS"]
            print(
                json.dumps(
                    {
                        "frame": done,
                        "rss_kib": rss,
                        "s_per_frame": (now - last) / (done - last_done),
                        "cpu_s_per_frame": (cpu - last_cpu) / (done - last_done),
                        "elapsed": now - start,
                    }
                ),
                flush=True,
            )
            last, last_cpu, last_done = now, cpu, done
    print(json.dumps({"peak_kib": status_kib("self", "VmHWM")["VmHWM"]}), flush=True)


def run_session(args: argparse.Namespace, keep: bool) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child-session",
        "--frames",
        str(args.frames),
        "--size",
        args.size,
        "--every",
        str(args.every),
    ] + (["--keep"] if keep else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"session run failed:\n{proc.stderr[-3000:]}")
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return {"marks": [r for r in records if "frame" in r], "peak_kib": records[-1]["peak_kib"]}


# ---- the CLI run (subprocess polled from here) -------------------------------------------------------


def write_inputs(work: Path, frames: int, size: tuple[int, int]) -> tuple[Path, Path]:
    """The video as an MP4 and frame 0's mask (written once; reused when present)."""
    from tamvt.data.palette import write_index_png
    from tamvt.data.video import VideoWriter

    video_path, mask_path = work / f"soak-{frames}-{size[0]}x{size[1]}.mp4", work / "soak-mask.png"
    video = synthetic_video(frames, size)
    if not video_path.is_file():
        with VideoWriter(video_path, fps=10) as writer:
            for t in range(frames):
                writer.write(video.render(t)[0])
    write_index_png(mask_path, video.render(0)[1])
    return video_path, mask_path


def run_cli(args: argparse.Namespace, work: Path) -> dict:
    import shutil

    video_path, mask_path = write_inputs(work, args.frames, args.size_hw)
    out = work / "cli-masks"
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    cmd = [
        sys.executable,
        "-m",
        "tamvt.cli",
        "segment",
        str(video_path),
        "--mask",
        str(mask_path),
        "--out",
        str(out),
        "--device",
        "cpu",
        "--short-side",
        "0",
        "--quiet",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    tmp = work / f".{out.name}.tmp-{proc.pid}"
    marks, peak, next_mark = [], 0, args.every
    start = last = time.perf_counter()
    last_cpu = 0.0
    while proc.poll() is None:
        time.sleep(0.05)
        kib = status_kib(proc.pid, "VmRSS", "VmHWM")
        cpu = cpu_seconds(proc.pid)
        peak = max(peak, kib.get("VmHWM", 0))
        if next_mark > args.frames:
            continue
        try:
            done = sum(1 for _ in os.scandir(tmp))
            if not marks and done == 0:  # the model is loaded: the clock starts (like the session runs')
                start = last = time.perf_counter()
                last_cpu = cpu or 0.0
        except FileNotFoundError:  # not made yet, or renamed to OUT: every frame is done
            done = args.frames if out.is_dir() else 0
        while done >= next_mark and "VmRSS" in kib and cpu is not None:
            now = time.perf_counter()
            width = next_mark - (marks[-1]["frame"] if marks else 0)
            marks.append(
                {
                    "frame": next_mark,
                    "rss_kib": kib["VmRSS"],
                    "s_per_frame": (now - last) / width,
                    "cpu_s_per_frame": (cpu - last_cpu) / width,
                    "elapsed": now - start,
                }
            )
            last, last_cpu, next_mark = now, cpu, next_mark + args.every
    if proc.returncode != 0:
        raise SystemExit(f"tamvt segment failed:\n{proc.stderr.read()[-3000:]}")
    return {"marks": marks, "peak_kib": peak, "masks": len(list(out.glob("*.png")))}


# ---- report --------------------------------------------------------------------------------------------


def summary(name: str, run: dict) -> dict:
    marks = {m["frame"]: m for m in run["marks"]}
    first = min(marks, key=lambda f: abs(f - 1000))
    last = max(marks)
    growth = (marks[last]["rss_kib"] - marks[first]["rss_kib"]) / marks[first]["rss_kib"]
    return {
        "run": name,
        "peak_mib": run["peak_kib"] / 1024,
        "rss_first_mib": marks[first]["rss_kib"] / 1024,
        "first_frame": first,
        "rss_last_mib": marks[last]["rss_kib"] / 1024,
        "last_frame": last,
        "growth_pct": 100 * growth,
        "s_per_frame_start": run["marks"][0]["s_per_frame"],
        "s_per_frame_end": run["marks"][-1]["s_per_frame"],
        "cpu_s_per_frame_start": run["marks"][0]["cpu_s_per_frame"],
        "cpu_s_per_frame_end": run["marks"][-1]["cpu_s_per_frame"],
        "minutes": run["marks"][-1]["elapsed"] / 60,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--size", default="96x128", help="HxW (default 96x128)")
    parser.add_argument("--every", type=int, default=500, help="record every N frames (default 500)")
    parser.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated, of {', '.join(RUNS)}")
    parser.add_argument("--work", type=Path, default=Path("runs/soak"), help="where the video and masks go")
    parser.add_argument("--json", type=Path, default=None, help="also write every record here")
    parser.add_argument("--child-session", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--keep", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    h, w = (int(x) for x in args.size.lower().split("x"))
    args.size_hw = (h, w)
    if args.child_session:
        session_child(args.frames, (h, w), args.every, args.keep)
        return
    runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    unknown = set(runs) - set(RUNS)
    if unknown:
        raise SystemExit(f"unknown run(s) {', '.join(sorted(unknown))}; expected {', '.join(RUNS)}")
    args.work.mkdir(parents=True, exist_ok=True)
    print(
        f"soak: {args.frames} frames of {h}x{w}, shipped model, CPU, OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS', 'unset')}",
        flush=True,
    )
    results, rows = {}, []
    for name in runs:
        began = time.perf_counter()
        results[name] = run_cli(args, args.work) if name == "cli" else run_session(args, keep=name == "session-kept")
        rows.append(summary(name, results[name]))
        r = rows[-1]
        print(
            f"{name:13s} peak RSS {r['peak_mib']:7.1f} MiB | RSS frame {r['first_frame']} {r['rss_first_mib']:7.1f} "
            f"-> frame {r['last_frame']} {r['rss_last_mib']:7.1f} MiB ({r['growth_pct']:+.2f} %) | s/frame "
            f"start {r['s_per_frame_start']:.4f} end {r['s_per_frame_end']:.4f} (CPU s/frame "
            f"{r['cpu_s_per_frame_start']:.4f} / {r['cpu_s_per_frame_end']:.4f}) | "
            f"{(time.perf_counter() - began) / 60:.1f} min",
            flush=True,
        )
    for name, run in results.items():
        print(
            f"{name}: RSS MiB every {args.every} frames: "
            + " ".join(f"{m['rss_kib'] / 1024:.0f}" for m in run["marks"])
        )
        print(f"{name}: CPU s/frame per window: " + " ".join(f"{m['cpu_s_per_frame']:.3f}" for m in run["marks"]))
    if args.json:
        args.json.write_text(json.dumps({"summary": rows, "runs": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
