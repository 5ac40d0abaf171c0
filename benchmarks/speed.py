"""Online inference speed and memory of the tamvt engine (not a test).

``tamvt-r50`` with random weights, fp32 on CPU, ``torch.set_num_threads(2)``, a synthetic 480x854
video (moving textured shapes from ``tamvt.data.synthetic``, rendered lazily). Every case runs in a
fresh subprocess, so each peak resident memory (``VmHWM`` of ``/proc/self/status``) is its own:

  (a) seconds per frame, one object, 41 frames, divided by the seconds per frame of a bare torchvision
      ResNet-50 forward at the same resolution (the authors' engine: 6.4; target <= 3.3). The
      ResNet-50 is timed in the same process right after the video, so both see the same machine load;
      a standalone ResNet-50 run is reported too;
  (b) five objects / one object, seconds per frame (authors': 5.0; target <= 4.0);
  (c) peak RSS of the one-object run (target <= 1.5 GB; authors' 3.3 GB at 41 frames) and the ratio of
      the peak RSS of a 600-frame video to a 60-frame one (target <= 1.1).

Frame rendering is timed separately and excluded from the engine's seconds per frame. Cases (a) and (b)
run again in bf16 (``inference.precision=bf16``, interleaved with fp32); a second table gives the
FLOPs per frame of each stage (backbone, memory encoder, matching, decoder, the rest; counted with
``torch.utils.flop_counter`` in the fp32 case), their CPU seconds and achieved GFLOP per CPU second as a
fraction of a 2048x2048 matmul's in the same precision (the machine's limit; ``--no-bf16`` skips it).

    .venv/bin/python benchmarks/speed.py                  # everything at 480x854 (the 600-frame video alone
                                                          # takes 600x the one-object s/frame)
    .venv/bin/python benchmarks/speed.py --quick          # memory-growth videos at 240x427 (9 min on 2 cores)
    .venv/bin/python benchmarks/speed.py --quick --passive  # on a machine shared with other jobs
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

AUTHORS = {"ratio": 6.4, "objects": 5.0, "rss_gb": 3.3}
TARGETS = {"ratio": 3.3, "objects": 4.0, "rss_gb": 1.5, "growth": 1.1}


def vm_hwm_bytes(field: str = "VmHWM") -> int:
    """Peak resident set size of this process (``VmHWM``; ``VmRSS``: the current one)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def clocks() -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process): CPU time is far less disturbed by other load."""
    return time.perf_counter(), time.process_time()


def time_resnet50(size: tuple[int, int], runs: int, channels_last: bool = False) -> tuple[float, float]:
    """(wall, CPU) seconds per forward of a bare torchvision ResNet-50 on one ``size`` frame (after a warm-up)."""
    import torch
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.resnet50(weights=None).eval()
    x = torch.randn(1, 3, *size)
    if channels_last:
        net, x = net.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        net(x)
        w0, c0 = clocks()
        for _ in range(runs):
            net(x)
        w1, c1 = clocks()
    return (w1 - w0) / runs, (c1 - c0) / runs


def matmul_gflops(dtype_name: str, n: int = 2048, runs: int = 10) -> tuple[float, float]:
    """(GFLOP per wall second, GFLOP per CPU second) of an ``n x n`` matmul in ``dtype_name`` (float32 /
    bfloat16): the machine's practical limit. Per CPU second the figure is far less disturbed by other
    jobs on the cores (threads x that = the wall figure of an idle machine)."""
    import torch

    dtype = getattr(torch, dtype_name)
    torch.manual_seed(0)
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b
    wall = cpu = float("inf")
    for _ in range(runs):  # the fastest of several: the peak, least disturbed by other load
        w0, c0 = clocks()
        a @ b
        w1, c1 = clocks()
        wall, cpu = min(wall, w1 - w0), min(cpu, c1 - c0)
    return 2 * n**3 / wall / 1e9, 2 * n**3 / cpu / 1e9


def case_resnet(args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    peaks = {}
    for name, dtype in (("fp32", "float32"), ("bf16", "bfloat16")):
        peaks[f"peak_{name}_gflops"], peaks[f"peak_{name}_gflop_per_cpu_s"] = matmul_gflops(dtype)
    wall, cpu = time_resnet50(args.size, args.runs)
    rss = vm_hwm_bytes()
    wall_cl, cpu_cl = time_resnet50(args.size, args.runs, channels_last=True)
    return {
        "s_per_frame": wall,
        "cpu_s_per_frame": cpu,
        "rss": rss,
        "s_per_frame_channels_last": wall_cl,
        "cpu_s_per_frame_channels_last": cpu_cl,
        **peaks,
    }


def case_tamvt(args: argparse.Namespace) -> dict:
    """Propagate ``args.objects`` objects over ``args.frames`` synthetic frames; nothing is kept."""
    import numpy as np
    import torch

    from tamvt.config import InferenceConfig, load_preset
    from tamvt.data.synthetic import SynthConfig, iter_video
    from tamvt.inference.predictor import Predictor
    from tamvt.inference.source import ArrayFrames
    from tamvt.models.tamvt import build_tamvt

    torch.set_num_threads(args.threads)
    events = ("cut",) if args.frames >= 12 else ()  # the synthetic events need >= 12 frames
    video = iter_video(
        SynthConfig(size=args.size, length=args.frames, num_objects=5, events=events, num_distractors=2, seed=3)
    )
    render = [0.0, 0.0]  # wall, CPU seconds spent rendering frames

    class Rendered(ArrayFrames):
        """The synthetic video as a lazy frame source; rendering time is accumulated apart."""

        def __init__(self) -> None:
            self.name, self.size, self.frames = "synthetic", tuple(args.size), None
            self.frame_names = tuple(f"{i:05d}" for i in range(args.frames))

        def __len__(self) -> int:
            return args.frames

        def iter_frames(self, start: int = 0):
            for i in range(start, args.frames):
                w0, c0 = clocks()
                frame, _ = video.render(i)
                w1, c1 = clocks()
                render[0] += w1 - w0
                render[1] += c1 - c0
                yield i, frame

    _, mask0 = video.render(0)
    ids = [int(k) for k in np.unique(mask0) if k != 0][: args.objects]
    if len(ids) < args.objects:
        raise SystemExit(f"only {len(ids)} objects visible in frame 0")
    cfg = load_preset("tamvt-r50")
    torch.manual_seed(0)
    model = build_tamvt(cfg.model)
    # frames are made at the input size: no resize (480x854 is what short_side=480 gives anyway)
    predictor = Predictor(
        model,
        InferenceConfig(short_side=None, precision=args.precision),
        clip_length=cfg.model.clip_length,
        channels_last=not args.no_channels_last,
    )
    session = predictor.start(Rendered(), keep_results=False)
    for obj in ids:
        predictor.add_mask(session, 0, obj, mask0 == obj)
    stage_s, stage_flops = time_stages(model, count_flops=args.flops)
    rss_before = vm_hwm_bytes("VmRSS")  # interpreter + torch + model + frame source
    total = flop_counter() if args.flops else contextlib.nullcontext()
    w0, c0 = clocks()
    count = 0
    with total:
        for _ in predictor.propagate(session):
            count += 1  # results are dropped at once: a real run writes them out
    w1, c1 = clocks()
    if args.flops:
        stage_flops["total"] = total.get_total_flops()
    out = {
        "precision": args.precision,
        "stage_s_per_frame": {k: v / count for k, v in stage_s.items()},
        "stage_gflop_per_frame": {k: v / count / 1e9 for k, v in stage_flops.items()},
        "frames": count,
        "objects": len(ids),
        "s_per_frame": (w1 - w0 - render[0]) / count,
        "cpu_s_per_frame": (c1 - c0 - render[1]) / count,
        "render_s_per_frame": render[0] / count,
        "rss": vm_hwm_bytes(),
        "rss_before": rss_before,
        "input_size": list(predictor.input_size(tuple(args.size))),
    }
    if args.resnet_after:
        del predictor, session, model
        out["resnet50_s_per_frame"], out["resnet50_cpu_s_per_frame"] = time_resnet50(tuple(args.size), args.runs)
    return out


STAGES = {  # model stage method -> the report's name
    "encode_frames": "backbone (frames)",
    "encode_memory": "memory encoder (mask backbone)",
    "match": "matching",
    "decode": "decoder (FPN, decoder, mask head)",
}


def flop_counter():
    import torch
    from torch.utils import flop_counter as fc

    # the CPU flash attention (the matching's SDPA on CPU) has no formula of its own in torch 2.9..2.14:
    # without this its FLOPs would count as 0
    cpu_flash = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if cpu_flash is not None and cpu_flash not in fc.flop_registry:
        fc.register_flop_formula(cpu_flash, get_raw=True)(fc.sdpa_flop)  # sdpa_flop is wrapped already
    return fc.FlopCounterMode(display=False)


def time_stages(model, count_flops: bool) -> tuple[dict[str, float], dict[str, float]]:
    """Wrap the model's stage methods so that each call adds its wall seconds (and, with
    ``count_flops``, its FLOPs) to the returned dicts; whatever is not in a stage is the rest."""
    seconds = dict.fromkeys(STAGES.values(), 0.0)
    flops = dict.fromkeys(STAGES.values(), 0.0) if count_flops else {}

    def wrap(name: str, fn):
        def timed(*a, **kw):
            counter = flop_counter() if count_flops else contextlib.nullcontext()
            t0 = time.perf_counter()
            with counter:
                out = fn(*a, **kw)
            seconds[name] += time.perf_counter() - t0
            if count_flops:
                flops[name] += counter.get_total_flops()
            return out

        return timed

    for method, name in STAGES.items():
        setattr(model, method, wrap(name, getattr(model, method)))
    return seconds, flops


def run_case(argv: list[str], passive: bool = False) -> dict:
    """Run one case in a fresh interpreter; its last stdout line is the JSON result."""
    cmd = [sys.executable, __file__, "--case", *argv]
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE") if passive else None
    print("$", "OMP_WAIT_POLICY=PASSIVE" if passive else "", " ".join(cmd[1:]), flush=True)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"case failed:\n{proc.stderr[-4000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"  {json.dumps(result)}  ({time.perf_counter() - start:.0f} s)", flush=True)
    return result


def size_text(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


BF16_TARGETS = {"speedup": 1.6, "fps": 1.2, "limit": 0.5}


def print_precision(base: dict, one: dict, one16: dict, five: dict | None, five16: dict | None) -> None:
    """fp32 vs bf16 autocast (``inference.precision``) from the same run, and each stage's achieved
    GFLOP/s as a fraction of the matmul peak of its precision (the machine's limit). The fractions use
    CPU time (a stage's CPU seconds = its share of the wall time x the frame's CPU seconds), which other
    jobs on the cores disturb far less than wall time; on an idle machine both agree."""
    peak = {p: base[f"peak_{p}_gflop_per_cpu_s"] for p in ("fp32", "bf16")}
    print()
    print(
        f"precision (same run, cases interleaved): 2048x2048 matmul peak fp32 {base['peak_fp32_gflops']:.0f} "
        f"GFLOP/s ({peak['fp32']:.0f} per CPU second), bf16 {base['peak_bf16_gflops']:.0f} GFLOP/s "
        f"({peak['bf16']:.0f} per CPU second)"
    )
    print(f"{'measure':56s} {'fp32':>8s} {'bf16':>8s} {'x':>6s} {'target':>7s} {'met':>4s}")
    rows = [
        (f"(a) s/frame, 1 object, {one['frames']} frames", one, one16, "s_per_frame", f">={BF16_TARGETS['speedup']}"),
        ("    CPU s/frame", one, one16, "cpu_s_per_frame", f">={BF16_TARGETS['speedup']}"),
        ("    bare ResNet-50 s/frame (same process, after; fp32)", one, one16, "resnet50_s_per_frame", ""),
    ]
    if five is not None and five16 is not None:
        rows.append((f"(b) s/frame, 5 objects, {five['frames']} frames", five, five16, "s_per_frame", ""))
    for label, a, b, key, target in rows:
        x = a[key] / b[key]
        met = ("yes" if x >= BF16_TARGETS["speedup"] else "NO") if target else ""
        print(f"{label:56s} {a[key]:8.3f} {b[key]:8.3f} {x:6.2f} {target:>7s} {met:>4s}")
    if five is not None and five16 is not None:
        ratio5 = (five["s_per_frame"] / one["s_per_frame"], five16["s_per_frame"] / one16["s_per_frame"])
        print(f"{'    (b) ratio 5 objects / 1 object':56s} {ratio5[0]:8.2f} {ratio5[1]:8.2f}")
    print(f"{'(c) peak RSS GB, 1 object':56s} {one['rss'] / 1e9:8.2f} {one16['rss'] / 1e9:8.2f}")
    for label, key in (
        ("frames/s, 1 object", "s_per_frame"),
        ("frames/s per 2 CPU seconds (idle machine)", "cpu_s_per_frame"),
    ):
        scale = 2.0 if key.startswith("cpu") else 1.0
        fps = (scale / one[key], scale / one16[key])
        met = "yes" if fps[1] >= BF16_TARGETS["fps"] else "NO"
        print(f"{label:56s} {fps[0]:8.2f} {fps[1]:8.2f} {'':6s} {'>=1.2':>7s} {met:>4s}")
    print()
    print(
        "where the time goes, 1 object: GFLOP/frame (torch.utils.flop_counter, fp32 run), CPU s/frame, "
        "GFLOP per CPU second and its % of the matmul peak of the same precision"
    )
    print(
        f"{'stage':36s} {'GFLOP':>7s} "
        + " ".join(f"{p + ' CPU s':>10s} {'GFLOP/s':>8s} {'%peak':>6s}" for p in ("fp32", "bf16"))
    )
    stages = list(one["stage_s_per_frame"])
    flops = dict(one["stage_gflop_per_frame"])
    flops["rest"] = flops["total"] - sum(flops[s] for s in stages)
    flops["whole frame"] = flops["total"]
    fractions = {}
    for name in [*stages, "rest", "whole frame"]:
        cells = []
        for run, prec in ((one, "fp32"), (one16, "bf16")):
            wall = dict(run["stage_s_per_frame"])
            wall["rest"] = run["s_per_frame"] - sum(run["stage_s_per_frame"].values())
            wall["whole frame"] = run["s_per_frame"]
            cpu = wall[name] / run["s_per_frame"] * run["cpu_s_per_frame"]
            rate = flops[name] / cpu if cpu > 0 else float("nan")
            fractions[name, prec] = rate / peak[prec]
            cells.append(f"{cpu:10.3f} {rate:8.1f} {100 * rate / peak[prec]:5.0f}%")
        print(f"{name:36s} {flops[name]:7.2f} {cells[0]} {cells[1]}")
    whole = fractions["whole frame", "bf16"]
    print(
        f"whole frame in bf16 at {100 * whole:.0f} % of the bf16 limit (target >= "
        f"{100 * BF16_TARGETS['limit']:.0f} %: {'yes' if whole >= BF16_TARGETS['limit'] else 'NO'})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=("resnet", "tamvt"), help=argparse.SUPPRESS)
    parser.add_argument("--size", default="480x854", help="frame size HxW (default 480x854)")
    parser.add_argument("--frames", type=int, default=41, help="frames of the speed video (default 41)")
    parser.add_argument("--objects", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--resnet-after", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"), help=argparse.SUPPRESS)
    parser.add_argument("--flops", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-bf16", action="store_true", help="skip the bf16 cases")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5, help="timed ResNet-50 forwards (default 5)")
    parser.add_argument("--short", type=int, default=60, help="frames of the short memory video (default 60)")
    parser.add_argument("--long", type=int, default=600, help="frames of the long memory video (default 600)")
    parser.add_argument("--memory-size", default=None, help="frame size of the memory videos (default: --size)")
    parser.add_argument("--quick", action="store_true", help="memory videos at 240x427 (the RSS growth only)")
    parser.add_argument("--no-channels-last", action="store_true", help="run the engine with NCHW tensors")
    parser.add_argument(
        "--passive",
        action="store_true",
        help="OMP_WAIT_POLICY=PASSIVE in the cases: on a machine shared with other jobs, spinning "
        "OpenMP threads inflate both wall and CPU time several-fold",
    )
    args = parser.parse_args()
    args.size = tuple(int(v) for v in args.size.lower().split("x"))
    if args.case:
        result = case_resnet(args) if args.case == "resnet" else case_tamvt(args)
        print(json.dumps(result))
        return 0

    common = ["--threads", str(args.threads), "--runs", str(args.runs)] + (
        ["--no-channels-last"] if args.no_channels_last else []
    )
    size = ["--size", size_text(args.size)]
    mem_size = args.memory_size or ("240x427" if args.quick else size_text(args.size))
    t_start, load_start = time.perf_counter(), os.getloadavg()
    base = run_case(["resnet", *size, *common], args.passive)
    video = [*size, "--frames", str(args.frames)]
    # fp32 and bf16 interleaved, so both see the same machine load; FLOPs counted in fp32 (the same
    # operations: FlopCounterMode cannot run under CPU autocast, where einsum's decomposition mixes dtypes)
    one = run_case(["tamvt", *video, "--objects", "1", "--resnet-after", "--flops", *common], args.passive)
    one16 = (
        None
        if args.no_bf16
        else run_case(
            ["tamvt", *video, "--objects", "1", "--resnet-after", "--precision", "bf16", *common],
            args.passive,
        )
    )
    five = run_case(["tamvt", *video, "--objects", "5", *common], args.passive)
    five16 = (
        None
        if args.no_bf16
        else run_case(["tamvt", *video, "--objects", "5", "--precision", "bf16", *common], args.passive)
    )
    short = run_case(
        ["tamvt", "--size", mem_size, "--frames", str(args.short), "--objects", "1", *common], args.passive
    )
    long = run_case(["tamvt", "--size", mem_size, "--frames", str(args.long), "--objects", "1", *common], args.passive)

    def both(key_num: str, a: dict, key_den: str, b: dict) -> tuple[float, float]:
        """(wall, CPU) ratio of a[key_num] to b[key_den] (the CPU keys are the wall keys with ``cpu_``)."""
        cpu_num = key_num.replace("s_per_frame", "cpu_s_per_frame")
        cpu_den = key_den.replace("s_per_frame", "cpu_s_per_frame")
        return a[key_num] / b[key_den], a[cpu_num] / b[cpu_den]

    ratio = both("s_per_frame", one, "resnet50_s_per_frame", one)
    ratio_alone = both("s_per_frame", one, "s_per_frame", base)
    ratio_cl = both("s_per_frame", one, "s_per_frame_channels_last", base)
    objects = both("s_per_frame", five, "s_per_frame", one)
    rss_gb = one["rss"] / 1e9
    growth = long["rss"] / short["rss"]

    def ok(value: float, target: float) -> str:
        return "yes" if value <= target else "NO"

    layout = "NCHW" if args.no_channels_last else "channels_last"
    print()
    print(
        f"tamvt-r50 (random weights), fp32 CPU, torch.set_num_threads({args.threads}), engine tensors {layout}, "
        f"synthetic {size_text(args.size)} video, input {size_text(tuple(one['input_size']))}, clip 2, memory 9"
        + (", OMP_WAIT_POLICY=PASSIVE" if args.passive else "")
    )
    print(f"{'measure':56s} {'wall':>8s} {'CPU':>8s} {'target':>7s} {'met':>4s} {'authors':>7s}")

    def f3(value: float) -> str:
        return f"{value:.3f}"

    def timing(label: str, wall: float, cpu: float) -> tuple[str, ...]:
        """A row with no target of its own."""
        return (label, f3(wall), f3(cpu), "", "", "")

    rows = [
        timing(f"(a) s/frame, 1 object, {one['frames']} frames", one["s_per_frame"], one["cpu_s_per_frame"]),
        timing(
            "    bare ResNet-50 s/frame (same process, after)",
            one["resnet50_s_per_frame"],
            one["resnet50_cpu_s_per_frame"],
        ),
        (
            "    (a) ratio 1 object / ResNet-50",
            f"{ratio[0]:.2f}",
            f"{ratio[1]:.2f}",
            f"<={TARGETS['ratio']}",
            ok(ratio[0], TARGETS["ratio"]),
            f"{AUTHORS['ratio']}",
        ),
        timing("    bare ResNet-50 s/frame (own process, NCHW)", base["s_per_frame"], base["cpu_s_per_frame"]),
        ("    ratio to that", f"{ratio_alone[0]:.2f}", f"{ratio_alone[1]:.2f}", "", "", ""),
        timing(
            "    bare ResNet-50 s/frame (own process, channels_last)",
            base["s_per_frame_channels_last"],
            base["cpu_s_per_frame_channels_last"],
        ),
        ("    ratio to that", f"{ratio_cl[0]:.2f}", f"{ratio_cl[1]:.2f}", "", "", ""),
        timing(f"(b) s/frame, 5 objects, {five['frames']} frames", five["s_per_frame"], five["cpu_s_per_frame"]),
        (
            "    (b) ratio 5 objects / 1 object",
            f"{objects[0]:.2f}",
            f"{objects[1]:.2f}",
            f"<={TARGETS['objects']}",
            ok(objects[0], TARGETS["objects"]),
            f"{AUTHORS['objects']}",
        ),
        (
            f"(c) peak RSS GB, 1 object, {one['frames']} frames",
            f"{rss_gb:.2f}",
            "",
            f"<={TARGETS['rss_gb']}",
            ok(rss_gb, TARGETS["rss_gb"]),
            f"{AUTHORS['rss_gb']}",
        ),
        (
            "    RSS GB before the video (Python, torch, model, source)",
            f"{one['rss_before'] / 1e9:.2f}",
            "",
            "",
            "",
            "",
        ),
        ("    peak RSS GB, 5 objects", f"{five['rss'] / 1e9:.2f}", "", "", "", ""),
        (f"    peak RSS GB, {short['frames']} frames at {mem_size}", f"{short['rss'] / 1e9:.3f}", "", "", "", ""),
        (f"    peak RSS GB, {long['frames']} frames at {mem_size}", f"{long['rss'] / 1e9:.3f}", "", "", "", ""),
        (
            f"    (c) RSS ratio {long['frames']} / {short['frames']} frames",
            f"{growth:.3f}",
            "",
            f"<={TARGETS['growth']}",
            ok(growth, TARGETS["growth"]),
            "",
        ),
    ]
    for row in rows:
        print(f"{row[0]:56s} {row[1]:>8s} {row[2]:>8s} {row[3]:>7s} {row[4]:>4s} {row[5]:>7s}")
    if one16 is not None and five16 is not None:
        print_precision(base, one, one16, five, five16)
    print(
        f"(frame rendering excluded: {one['render_s_per_frame'] * 1000:.1f} ms/frame; "
        f"total benchmark time {(time.perf_counter() - t_start) / 60:.1f} min; load average at start "
        f"{load_start[0]:.1f}, at end {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
