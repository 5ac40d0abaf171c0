"""tamvt beside other video-object-segmentation engines, on the same frames, in one run (not a test).

One synthetic video (``tamvt synth``: 480x854, ``--frames`` frames, 5 target objects, a cut), decoded
into memory once per case; the first frame's mask of 1 object, then of 5 objects, is given to each
engine, which segments the rest of the video online. Every (engine, objects) case runs in its own
fresh interpreter with the same ``torch.set_num_threads``, random weights (speed only; no checkpoint
is read or downloaded), fp32 on CPU:

  tamvt-r50          the authors' architecture, input 480x854 (short side 480, as benchmarks/speed.py)
  tamvt-mini         the shipped CPU model at its preset input (short side 120: 120x213)
  sam2.1-tiny        SAM 2.1 Hiera-T, its default 1024x1024 input (pip package ``sam2``)
  sam2.1-base+       SAM 2.1 Hiera-B+, 1024x1024
  sam2.1-tiny-480    SAM 2.1 Hiera-T with ``image_size=480`` (480x480; RoPE grids set to 30x30)
  cutie              Cutie base (pip package ``rf-cutie``), its default 480 short side (480x854)

Measured per case, from the first frame's mask to the last frame's output: seconds per frame over
frames 1..N-1 taken in pairs (tamvt decodes clips of 2 frames and yields them together, so single-frame
gaps are meaningless for it): the median pair over the steady part (frames 11..) and over the whole
video; process CPU seconds per frame; the growth of s/frame from the first 10 frames to the last 10;
peak RSS (``VmHWM``, which includes the decoded frames each engine holds: SAM 2 loads the whole video
as 1024x1024 float32 up front, its design). Ratios are to tamvt-r50 with the same number of objects,
measured in the same run. A peer that cannot be imported or run is reported in the table with the
reason; nothing else fails.

The peers live in another virtual environment (docs/benchmarks.md, "Setting up the peers", says how to make one):

    .venv/bin/python benchmarks/peers.py --peer-python /tmp/peers-venv/bin/python [--frames 41] [--threads 2]
    .venv/bin/python benchmarks/peers.py --frames 11 --engines tamvt-r50,sam2.1-tiny --objects 1   # a quick try
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENGINES = ("tamvt-r50", "tamvt-mini", "sam2.1-tiny", "sam2.1-base+", "sam2.1-tiny-480", "cutie")
SIZE = (480, 854)
SEQUENCE = "demo-000"  # the name `tamvt synth --preset demo` gives its one video
INSTALL_HINT = {
    "sam2": "SAM2_BUILD_CUDA=0 pip install --no-build-isolation sam2 (docs/benchmarks.md)",
    "cutie": "pip install rf-cutie hydra-core (docs/benchmarks.md)",
}


# ---------------------------------------------------------------- inside a case (any interpreter)
# Only numpy, PIL and torch are imported here: the peers' environment need not have tamvt.


def peak_rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def load_video(root: Path, frames: int):
    """``(frames (T, H, W, 3) uint8, index mask of frame 0 (H, W) uint8, frame folder)``."""
    import numpy as np
    from PIL import Image

    folder = root / "JPEGImages" / "480p" / SEQUENCE
    paths = sorted(folder.glob("*.jpg"))[:frames]
    video = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])
    mask0 = np.asarray(Image.open(root / "Annotations" / "480p" / SEQUENCE / "00000.png"))  # palette -> ids
    return video, mask0, folder


class Clock:
    """Timestamps (wall, process CPU) of every frame's output; ``start`` is the mask's arrival."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.start()

    def start(self) -> None:
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()

    def tick(self) -> None:
        self.wall.append(time.perf_counter() - self.wall0)
        self.cpu.append(time.process_time() - self.cpu0)


def run_tamvt(preset: str, video, mask0, ids: list[int], threads: int, folder: Path) -> tuple[Clock, str]:
    import torch

    from tamvt.config import InferenceConfig, load_preset
    from tamvt.inference import Predictor
    from tamvt.inference.source import ArrayFrames
    from tamvt.models.tamvt import build_tamvt

    cfg = load_preset(preset)
    torch.manual_seed(0)
    short = 480 if preset == "tamvt-r50" else cfg.inference.short_side  # r50: as benchmarks/speed.py
    predictor = Predictor(build_tamvt(cfg.model), InferenceConfig(short_side=short), clip_length=cfg.model.clip_length)
    h, w = predictor.input_size(tuple(video.shape[1:3]))
    session = predictor.start(ArrayFrames(video))
    clock = Clock()
    for obj in ids:
        predictor.add_mask(session, 0, obj, mask0 == obj)
    for _ in predictor.propagate(session):
        clock.tick()
    return clock, f"{h}x{w}"


def run_sam2(variant: str, video, mask0, ids: list[int], threads: int, folder: Path) -> tuple[Clock, str]:
    import numpy as np
    import torch
    from sam2.build_sam import build_sam2_video_predictor

    config = {"sam2.1-tiny": "sam2.1_hiera_t", "sam2.1-base+": "sam2.1_hiera_b+", "sam2.1-tiny-480": "sam2.1_hiera_t"}[
        variant
    ]
    overrides = []
    if variant.endswith("-480"):
        # the memory attention's RoPE tables are sized for the 64x64 grid of a 1024 input
        overrides = [
            "++model.image_size=480",
            "++model.memory_attention.layer.self_attention.feat_sizes=[30,30]",
            "++model.memory_attention.layer.cross_attention.feat_sizes=[30,30]",
        ]
    torch.manual_seed(0)
    predictor = build_sam2_video_predictor(
        f"configs/sam2.1/{config}.yaml", ckpt_path=None, device="cpu", hydra_overrides_extra=overrides
    )
    with torch.inference_mode(), tempfile.TemporaryDirectory() as tmp:
        for path in sorted(folder.glob("*.jpg"))[: len(video)]:  # SAM 2 reads a whole folder: the first N frames
            (Path(tmp) / path.name).symlink_to(path)
        # SAM 2 reads and resizes every frame here (not timed: the other engines get decoded frames)
        state = predictor.init_state(tmp)
        clock = Clock()
        for obj in ids:
            predictor.add_new_mask(state, frame_idx=0, obj_id=obj, mask=np.asarray(mask0 == obj))
        for _ in predictor.propagate_in_video(state):
            clock.tick()
    return clock, f"{predictor.image_size}x{predictor.image_size}"


def run_cutie(video, mask0, ids: list[int], threads: int, folder: Path) -> tuple[Clock, str]:
    import cutie
    import numpy as np
    import torch
    from cutie.inference.inference_core import InferenceCore
    from cutie.inference.utils.args_utils import get_dataset_cfg
    from cutie.model.cutie import CUTIE
    from hydra import compose, initialize_config_dir
    from omegaconf import open_dict
    from torch.utils import model_zoo

    # random weights: Cutie's ResNets otherwise download ImageNet weights at construction
    model_zoo.load_url = lambda *a, **k: {}
    import cutie.model.utils.resnet as cutie_resnet

    cutie_resnet.load_weights_add_extra_dim = lambda *a, **k: None
    config_dir = str(Path(next(iter(cutie.__path__))) / "config")  # a namespace package: no __file__
    with initialize_config_dir(version_base="1.3.2", config_dir=config_dir, job_name="peers"):
        cfg = compose(config_name="eval_config")
    with open_dict(cfg):
        get_dataset_cfg(cfg)
        cfg.max_internal_size = 480  # the scripting demo's setting: short side 480
    torch.manual_seed(0)
    network = CUTIE(cfg).eval()
    core = InferenceCore(network, cfg=cfg)
    index = np.where(np.isin(mask0, ids), mask0, 0)
    n = len(video)
    with torch.inference_mode():
        clock = Clock()
        for t in range(n):
            image = torch.from_numpy(video[t]).permute(2, 0, 1).float().div_(255)
            if t == 0:
                prob = core.step(image, torch.from_numpy(index).long(), objects=ids)
            else:
                prob = core.step(image, end=t == n - 1)
            core.output_prob_to_mask(prob)
            clock.tick()
    h, w = SIZE
    scale = min(1.0, cfg.max_internal_size / min(h, w))
    return clock, f"{int(h * scale)}x{int(w * scale)}"


def case_main(args: argparse.Namespace) -> dict:
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    video, mask0, folder = load_video(args.data, args.frames)
    ids = [int(k) for k in np.unique(mask0) if k != 0][: args.objects]
    if len(ids) < args.objects:
        raise SystemExit(f"only {len(ids)} objects in frame 0")
    engine = args.case
    if engine.startswith("tamvt"):
        clock, size = run_tamvt(engine, video, mask0, ids, args.threads, folder)
    elif engine.startswith("sam2"):
        clock, size = run_sam2(engine, video, mask0, ids, args.threads, folder)
    else:
        clock, size = run_cutie(video, mask0, ids, args.threads, folder)
    if len(clock.wall) != len(video):
        raise SystemExit(f"{engine} gave {len(clock.wall)} outputs for {len(video)} frames")
    return {
        "wall": clock.wall,
        "cpu": clock.cpu,
        "rss": peak_rss(),
        "input": size,
        "objects": len(ids),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


# ---------------------------------------------------------------- the driver (tamvt's interpreter)


def summarise(result: dict) -> dict:
    """Per-frame figures from the output timestamps (frame 0 = the mask frame, not counted)."""
    wall, cpu = result["wall"], result["cpu"]
    n = len(wall)
    # pairs (1,2), (3,4), ...: seconds per frame of each pair
    pairs = [(i, (wall[i + 1] - wall[i - 1]) / 2) for i in range(1, n - 1, 2)]
    steady = [s for i, s in pairs if i > 10] or [s for _, s in pairs]
    per_frame = [wall[i] - wall[i - 1] for i in range(1, n)]
    growth = None
    if n - 1 >= 20:
        growth = statistics.fmean(per_frame[-10:]) / statistics.fmean(per_frame[:10])
    return {
        "steady": statistics.median(steady),
        "whole": statistics.median(s for _, s in pairs),
        "cpu": (cpu[-1] - cpu[0]) / (n - 1),
        "first": wall[0],
        "growth": growth,
        "rss_gb": result["rss"] / 1e9,
        "input": result["input"],
    }


def make_video(out: Path, frames: int) -> None:
    """``tamvt synth``: one 480x854 video with 5 target objects (a cut when long enough for one)."""
    events = "cut" if frames >= 12 else ""
    cmd = [
        sys.executable,
        "-m",
        "tamvt.cli",
        "synth",
        str(out),
        "--preset",
        "demo",
        "--length",
        str(frames),
        "--size",
        f"{SIZE[0]}x{SIZE[1]}",
        "--objects",
        "5",
        "--events",
        events,
        "--quiet",
        "--overwrite",
    ]
    subprocess.run(cmd, check=True, capture_output=True, text=True)


def engine_python(engine: str, peer_python: str) -> str:
    return sys.executable if engine.startswith("tamvt") else peer_python


def run_case(engine: str, objects: int, args: argparse.Namespace, data: Path) -> dict:
    """One case in a fresh interpreter; ``{"error": why}`` when it cannot run."""
    python = engine_python(engine, args.peer_python)
    module = "sam2" if engine.startswith("sam2") else "cutie" if engine == "cutie" else "tamvt"
    probe = subprocess.run([python, "-c", f"import {module}"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": f"not installed for {python} ({last}); {INSTALL_HINT.get(module, '')}"}
    cmd = [
        python,
        __file__,
        "--case",
        engine,
        "--objects",
        str(objects),
        "--frames",
        str(args.frames),
        "--threads",
        str(args.threads),
        "--data",
        str(data),
    ]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), PYTHONWARNINGS="ignore", TQDM_DISABLE="1")
    if args.passive:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    start = time.perf_counter()
    print(f"$ {engine}, {objects} object(s) ...", end=" ", flush=True)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.case_timeout, check=False)
    except subprocess.TimeoutExpired:
        print("timed out", flush=True)
        return {"error": f"did not finish in {args.case_timeout} s"}
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()] or ["exit code " + str(proc.returncode)]
        print("failed", flush=True)
        return {"error": f"failed: {lines[-1][:300]}"}
    result = summarise(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f"{result['steady']:.3f} s/frame ({time.perf_counter() - start:.0f} s)", flush=True)
    return result


def table(results: dict[tuple[str, int], dict], objects: list[int]) -> list[str]:
    def f(value: float | None, fmt: str) -> str:
        return "—" if value is None else format(value, fmt)

    rows = [
        (
            "| engine | input | objects | s/frame, steady (median) | s/frame, whole video (median) | "
            "CPU s/frame | steady ÷ tamvt-r50 | CPU ÷ tamvt-r50 | last 10 ÷ first 10 frames | peak RSS GB |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for engine in dict.fromkeys(e for e, _ in results):
        for k in objects:
            r = results.get((engine, k))
            if r is None:
                continue
            if "error" in r:
                rows.append(f"| {engine} | | {k} | not run: {r['error']} | | | | | | |")
                continue
            ref = results.get(("tamvt-r50", k), {})
            ratio = r["steady"] / ref["steady"] if "steady" in ref else None
            cpu_ratio = r["cpu"] / ref["cpu"] if "cpu" in ref else None
            rows.append(
                f"| {engine} | {r['input']} | {k} | {r['steady']:.3f} | {r['whole']:.3f} | {r['cpu']:.3f} | "
                f"{f(ratio, '.2f')} | {f(cpu_ratio, '.2f')} | {f(r['growth'], '.2f')} | {r['rss_gb']:.2f} |"
            )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help="a `tamvt synth` video made by an earlier run (default: make one)")
    parser.add_argument("--frames", type=int, default=41, help="frames of the video (default 41; 11 for a quick try)")
    parser.add_argument("--objects", default="1,5", help="object counts (default 1,5)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads in every case (default 2)")
    parser.add_argument("--engines", default=",".join(ENGINES), help=f"comma-separated subset of {', '.join(ENGINES)}")
    parser.add_argument(
        "--peer-python",
        default=os.environ.get("PEERS_PYTHON", sys.executable),
        help="interpreter of the peers' environment (default $PEERS_PYTHON, else this one)",
    )
    parser.add_argument("--case-timeout", type=int, default=900, help="seconds before a case is abandoned")
    parser.add_argument(
        "--pause",
        type=float,
        default=0.0,
        help="seconds to sleep between cases (lets other jobs on a shared machine run)",
    )
    parser.add_argument(
        "--passive", action="store_true", help="OMP_WAIT_POLICY=PASSIVE in the cases (a machine shared with other jobs)"
    )
    args = parser.parse_args()
    if args.case:
        args.objects = int(args.objects)
        print(json.dumps(case_main(args)))
        return 0

    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        parser.error(f"unknown engine(s) {', '.join(unknown)}; known: {', '.join(ENGINES)}")
    if args.frames < 3:
        parser.error("--frames must be >= 3")
    objects = [int(k) for k in args.objects.split(",")]
    t0, load0 = time.perf_counter(), os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="tamvt-peers-") as tmp:
        data = args.data or Path(tmp) / "video"
        if args.data is None:
            make_video(data, args.frames)
        results = {}
        for e in engines:
            for k in objects:
                if results and args.pause:
                    time.sleep(args.pause)
                results[(e, k)] = run_case(e, k, args, data)
    print()
    print(
        f"{args.frames} frames of 480x854 (`tamvt synth`, 5 target objects), fp32 CPU, random weights, "
        f"torch threads {args.threads}{', OMP_WAIT_POLICY=PASSIVE' if args.passive else ''}; "
        f"{(time.perf_counter() - t0) / 60:.1f} min, load average {load0:.1f} at start and "
        f"{os.getloadavg()[0]:.1f} at end on {os.cpu_count()} CPUs"
    )
    print()
    print("\n".join(table(results, objects)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
