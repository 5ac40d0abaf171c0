"""CPU speed trials: torch.compile (inductor), int8 backbone (PT2E), bf16 autocast, thread scaling.

For each model (``mini``: the shipped tamvt-mini-synthetic weights; ``r50``: tamvt-r50 with random
weights, speed only matters) one *clip step* is timed: encode a clip of ``clip_length`` frames, match
it against a memory of 3 entries (built once, eagerly, from ground-truth masks of a synthetic video)
and decode the masks. Cases, interleaved (one call of each in turn per repeat, median reported):

- ``eager``: the model as the engine runs it (fp32);
- ``compile backbone`` / ``compile clip step``: ``torch.compile`` (inductor) of the backbone alone /
  of the whole clip step;
- ``int8 backbone``: the backbone exported with ``torch.export``, quantized with PT2E
  (``X86InductorQuantizer``, static per-channel int8, calibrated on frames of other synthetic videos)
  and compiled with inductor — needs ``torchao`` (``--torchao DIR`` adds a folder to ``sys.path``);
- ``bf16 autocast``: eager under ``torch.autocast("cpu", torch.bfloat16)`` for comparison.

Accuracy of each case against eager fp32 on the same inputs: max |dp| over the mask probabilities
and the IoU of the thresholded masks (p > 0.5). Compile / quantize times are the first call's.
``--threads`` times the mini model's eager clip step at 1, 2 and all cores (frames/s).

    .venv/bin/python benchmarks/cpu_trials.py [--models mini,r50] [--repeats 7] [--r50-size 240x432]
        [--trials compile,int8,bf16,threads] [--torchao DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

ROOT = Path(__file__).resolve().parents[1]


def synthetic_clips(size: tuple[int, int], seed: int, num: int) -> list[tuple[Tensor, Tensor]]:
    """``num`` synthetic videos at ``size``: (normalised frames (T, 3, H, W), label maps (T, H, W))."""
    from tamvt.data.synthetic import make_video, preset_suite
    from tamvt.imagenet import normalize_

    out = []
    for cfg in preset_suite("tiny", seed=seed, num=num):
        video = make_video(dataclasses.replace(cfg, size=size))
        frames = torch.from_numpy(np.asarray(video.frames)).permute(0, 3, 1, 2).float().div_(255)
        out.append((normalize_(frames), torch.from_numpy(np.asarray(video.masks)).long()))
    return out


def build(name: str) -> tuple[nn.Module, int]:
    """(model in eval mode, clip length)."""
    from tamvt.checkpoint import load_checkpoint
    from tamvt.config import load_preset
    from tamvt.models.tamvt import build_tamvt

    if name == "mini":
        model, cfg = load_checkpoint(ROOT / "src" / "tamvt" / "weights" / "tamvt-mini-synthetic.safetensors")
    else:
        cfg = load_preset("tamvt-r50")
        torch.manual_seed(0)
        model = build_tamvt(cfg.model)
    return model.eval(), cfg.model.clip_length


class ClipStep(nn.Module):
    """Encode a clip, match it against fixed memory entries, decode: sigmoid of the last layer's logits."""

    def __init__(self, model: nn.Module, entries: list[Any]) -> None:
        super().__init__()
        self.model = model
        self.entries = entries

    def forward(self, images: Tensor) -> Tensor:
        query = self.model.encode_frames(images)
        z = self.model.match(query, self.entries)
        return self.model.decode(query, z)[-1].float().sigmoid()


def memory_entries(model: nn.Module, frames: Tensor, labels: Tensor, count: int) -> list[Any]:
    ids = [int(i) for i in labels[0].unique() if i > 0][:2]
    entries = []
    with torch.inference_mode():
        for t in range(count):
            feats = model.encode_frames(frames[t : t + 1])
            masks = torch.stack([(labels[t] == i).float() for i in ids])[:, None]
            entries.append(model.encode_memory(feats, masks))
    return entries


def accuracy(ref: Tensor, out: Tensor) -> str:
    dp = (out.float() - ref).abs().max().item()
    a, b = ref > 0.5, out.float() > 0.5
    union = (a | b).sum().item()
    iou = (a & b).sum().item() / union if union else 1.0
    return f"max|dp| {dp:.1e}, IoU {iou:.4f}"


def int8_backbone(backbone: nn.Module, example: Tensor, calibration: list[Tensor]) -> nn.Module:
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as xiq

    quantizer = xiq.X86InductorQuantizer()
    quantizer.set_global(xiq.get_default_x86_inductor_quantization_config())
    exported = torch.export.export(backbone, (example,)).module()
    prepared = prepare_pt2e(exported, quantizer)
    with torch.no_grad():
        for x in calibration:
            prepared(x)
    converted = convert_pt2e(prepared)
    return torch.compile(converted)


class _Swap(nn.Module):
    """The model with another backbone for query frames (memory entries were built eagerly)."""

    def __init__(self, model: nn.Module, backbone: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.backbone = backbone

    def encode_frames(self, images: Tensor) -> Any:
        orig = self.model.backbone
        try:
            self.model.backbone = self.backbone
            return self.model.encode_frames(images)
        finally:
            self.model.backbone = orig

    def match(self, *args: Any) -> Any:
        return self.model.match(*args)

    def decode(self, *args: Any) -> Any:
        return self.model.decode(*args)


def trial_model(name: str, args: argparse.Namespace) -> None:
    size = (120, 160) if name == "mini" else args.r50_size
    model, clip = build(name)
    videos = synthetic_clips(size, seed=1, num=1 + args.calibration)
    frames, labels = videos[0]
    entries = memory_entries(model, frames, labels, 3)
    images = frames[3 : 3 + clip].contiguous()
    eager = ClipStep(model, entries)
    cases: dict[str, Callable[[], Tensor]] = {"eager": lambda: eager(images)}
    setup: dict[str, float] = {}
    with torch.inference_mode():
        ref = eager(images)

    def add(label: str, make: Callable[[], Callable[[], Tensor]]) -> None:
        t0 = time.perf_counter()
        try:
            fn = make()
            with torch.inference_mode():
                fn()  # compile / first call
            setup[label] = time.perf_counter() - t0
            cases[label] = fn
        except Exception as err:  # a trial that cannot run is reported, the others go on
            print(f"  {name} {label}: FAILED {type(err).__name__}: {str(err).splitlines()[0][:300]}")
            if args.verbose:
                traceback.print_exc()

    trials = args.trials
    if "compile" in trials:

        def compile_backbone() -> Callable[[], Tensor]:
            s = ClipStep(_Swap(model, torch.compile(model.backbone)), entries)
            return lambda: s(images)

        def compile_step() -> Callable[[], Tensor]:
            s = torch.compile(ClipStep(model, entries))
            return lambda: s(images)

        add("compile backbone", compile_backbone)
        add("compile clip step", compile_step)
    if "int8" in trials:
        calib = [v[0][t : t + clip].contiguous() for v in videos[1:] for t in (0, 6)]

        def make_int8() -> Callable[[], Tensor]:
            with torch.no_grad():
                q = int8_backbone(model.backbone, images, calib)
            s = ClipStep(_Swap(model, q), entries)
            return lambda: s(images)

        add("int8 backbone", make_int8)
    if "bf16" in trials:

        def bf16() -> Tensor:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return eager(images)

        add("bf16 autocast", lambda: bf16)

    times: dict[str, list[float]] = {k: [] for k in cases}
    outs: dict[str, Tensor] = {}
    with torch.inference_mode():
        for _ in range(args.repeats):
            for label, fn in cases.items():
                t0 = time.perf_counter()
                outs[label] = fn()
                times[label].append(time.perf_counter() - t0)
    base = statistics.median(times["eager"])
    print(
        f"{name}: clip of {clip} frames at {size[0]}x{size[1]}, memory of 3 entries, {ref.shape[0]} objects, "
        f"torch threads {torch.get_num_threads()}, {args.repeats} interleaved repeats (median)"
    )
    for label, ts in times.items():
        med = statistics.median(ts)
        extra = f"; setup {setup[label]:.0f} s" if label in setup else ""
        print(
            f"  {label:18s} {med * 1000:8.1f} ms/clip  {clip / med:6.2f} frames/s  speed x{base / med:.2f}  "
            f"{accuracy(ref, outs[label])}{extra}"
        )


def trial_threads(args: argparse.Namespace) -> None:
    model, clip = build("mini")
    frames, labels = synthetic_clips((120, 160), seed=1, num=1)[0]
    step = ClipStep(model, memory_entries(model, frames, labels, 3))
    images = frames[3 : 3 + clip].contiguous()
    counts = sorted({1, 2, os.cpu_count() or 1})
    times: dict[int, list[float]] = {n: [] for n in counts}
    with torch.inference_mode():
        for n in counts:  # warm-up per thread count
            torch.set_num_threads(n)
            step(images)
        for _ in range(args.repeats):
            for n in counts:
                torch.set_num_threads(n)
                t0 = time.perf_counter()
                step(images)
                times[n].append(time.perf_counter() - t0)
    torch.set_num_threads(args.torch_threads)
    base = statistics.median(times[1])
    print(f"mini thread scaling (eager fp32 clip step, 120x160, {args.repeats} interleaved repeats, median):")
    for n in counts:
        med = statistics.median(times[n])
        print(f"  {n:2d} threads: {clip / med:6.2f} frames/s  x{base / med:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mini,r50")
    parser.add_argument("--trials", default="compile,int8,bf16,threads")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--calibration", type=int, default=4, help="synthetic videos for int8 calibration")
    parser.add_argument("--r50-size", default="240x432", help="HxW of the r50 input")
    parser.add_argument("--torch-threads", type=int, default=1, help="threads for every trial but --threads")
    parser.add_argument("--torchao", help="a folder holding the torchao package (added to sys.path)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    args.r50_size = tuple(int(v) for v in args.r50_size.lower().split("x"))
    args.trials = {t.strip() for t in args.trials.split(",")}
    if args.torchao:
        sys.path.append(args.torchao)
    torch.set_num_threads(args.torch_threads)
    print(f"torch {torch.__version__}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        trial_model(name, args)
    if "threads" in args.trials:
        trial_threads(args)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
