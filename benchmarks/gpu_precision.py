"""fp32 against bf16 autocast for online inference on one GPU: frames/s interleaved, kernels per frame.

    python benchmarks/gpu_precision.py [--device cuda] [--rounds 3] [--json FILE]

tamvt-r50 (random weights, as in gpu_check.py) and the shipped tamvt-mini-synthetic, each at 480x854
with 1 and 5 objects on gpu_check.py's synthetic video (41 frames): after a 5-frame warm-up of both,
``--rounds`` runs of each precision, alternated, so that a change of the machine's load hits both.
On CUDA it also profiles 11 frames of each: the number of GPU kernels per frame and their summed
time, against which the frame's wall time tells whether the GPU or the launching CPU is the limit.
``--device cpu`` runs the same at 96x160 and 5 frames (no profile).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gpu_check  # noqa: E402


def models(device: torch.device):
    from tamvt.checkpoint import load_checkpoint, shipped_model_path

    yield "tamvt-r50", gpu_check.build_r50(device)
    yield "tamvt-mini-synthetic", load_checkpoint(shipped_model_path())[0].to(device).eval()


def main() -> int:
    from tamvt.config import InferenceConfig
    from tamvt.inference import Predictor
    from tamvt.inference.source import ArrayFrames

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    device = torch.device(args.device)
    size, count = ((480, 854), 41) if device.type == "cuda" else ((96, 160), 5)
    frames, mask0 = gpu_check.synthetic_video(size, count)
    results: dict[str, float | list[float]] = {}
    for name, model in models(device):
        for objects in (1, 5):
            ids = [int(k) for k in np.unique(mask0) if k != 0][:objects]
            predictors = {
                p: Predictor(model, InferenceConfig(short_side=None, precision=p), clip_length=2)
                for p in ("fp32", "bf16")
            }

            def run(precision: str, n: int, predictors=predictors, ids=ids) -> int:
                predictor = predictors[precision]
                session = predictor.start(ArrayFrames(frames[:n]))
                for obj in ids:
                    predictor.add_mask(session, 0, obj, mask0 == obj)
                return sum(1 for _ in predictor.propagate(session))

            for precision in predictors:
                run(precision, 5)
            key = f"{name} {size[0]}x{size[1]} {objects} obj"
            for _ in range(args.rounds):
                for precision in predictors:
                    gpu_check.sync(device)
                    start = time.perf_counter()
                    done = run(precision, count)
                    gpu_check.sync(device)
                    fps = done / (time.perf_counter() - start)
                    results.setdefault(f"{key} {precision} frames/s", []).append(round(fps, 2))  # type: ignore[union-attr]
            if device.type == "cuda":
                from torch.profiler import ProfilerActivity, profile

                for precision in predictors:
                    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
                        run(precision, 11)
                    kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
                    results[f"{key} {precision} kernels/frame"] = round(len(kernels) / 11, 1)
                    results[f"{key} {precision} GPU ms/frame"] = round(sum(e.device_time for e in kernels) / 11e3, 2)
            for k, v in results.items():
                if k.startswith(key):
                    print(k, v, flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
