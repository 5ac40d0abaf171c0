"""GPU check: inference speed and memory, bf16 accuracy, training and DDP on one CUDA machine, one table.

Not a test, but tests/test_gpu_check.py runs its CPU mode so that every code path below runs in CI.
On a machine with one CUDA GPU (under 8 minutes on an H100-class card):

  * tamvt-r50 (random weights) online over a synthetic video (41 frames) at 480x854 and 624x1110,
    1 and 5 objects, fp32 (PyTorch's defaults: cuDNN convolutions may use TF32) and bf16 autocast
    (the predictor's ``inference.precision``: ``fp32`` / ``bf16``); then, at 480p / 1 object / bf16,
    with channels_last and with ``torch.compile`` of the backbone. Each row: frames/s (after a warm-up video, which also
    compiles), peak GPU memory (``max_memory_allocated``) and the scaled-dot-product-attention backend
    that actually ran in the matching and in the decoder, read from the profiler's op names
    (flash / efficient / cudnn / math);
  * the authors' vector A (tests/fixtures/official) in fp32 (TF32 off) against their outputs, and in
    bf16 autocast against fp32: max and mean |delta p| with the bounds below;
  * 100 training steps of the ``finetune-vost`` preset on synthetic videos (bf16 autocast, 12-frame
    windows at 384x640): steps/s, peak memory, finite losses; then a checkpoint (CUDA RNG states
    included), a resume from it and one validation video through the predictor;
  * with two GPUs, 20 steps of 2-process DDP over NCCL (torchrun); weights identical on both ranks.

``--device cpu`` runs the same code at tiny sizes, few frames and steps: bf16 rows use the predictor's
CPU autocast (``precision=bf16``), ``torch.compile`` uses the ``eager`` backend on one residual stage, peak memory is
the process's peak RSS. Its numbers are not GPU figures; it is there so that CI runs every path:

    python benchmarks/gpu_check.py                 # cuda when available
    OMP_WAIT_POLICY=PASSIVE python benchmarks/gpu_check.py --device cpu    # ~1 min on 2 cores
    bash benchmarks/gpu_check.sh                   # the same, with the environment printed first

Exit status 1 when a check fails (a bound, a non-finite number, an exception in a row).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "official" / "tamvt_official_vectors.safetensors"
# vector A, bf16 autocast vs fp32, |delta p| over 6 frames of 128x192: bf16 keeps 8 significant bits
# (relative rounding 2^-9) and this random-weight model has logits up to ~27 after 50 conv layers.
# Measured with CPU autocast on this project's CPU machine: max 0.085, mean 0.0072 (GPU: not measured).
BF16_MAX_BOUND = 0.2
BF16_MEAN_BOUND = 0.02
FP32_BOUND = 1e-3  # fp32 vs the authors' numbers (CPU: 8.6e-6; cuDNN may pick FFT / Winograd algorithms)

SDPA_OPS = {
    "aten::_scaled_dot_product_flash_attention": "flash",
    "aten::_scaled_dot_product_flash_attention_for_cpu": "flash(cpu)",
    "aten::_scaled_dot_product_efficient_attention": "efficient",
    "aten::_scaled_dot_product_cudnn_attention": "cudnn",
    "aten::_scaled_dot_product_fused_attention_overrideable": "fused",
    "aten::_scaled_dot_product_attention_math": "math",
}


@dataclass(frozen=True)
class Plan:
    """Sizes of one run: the real ones on a GPU, tiny ones in CPU mode."""

    sizes: dict[str, tuple[int, int]]
    frames: int
    warmup_frames: int
    train_steps: int
    train_warmup: int
    crop: tuple[int, int]
    window: int
    synthetic_size: tuple[int, int]
    workers: int
    ddp_steps: int
    compile_backend: str
    compile_module: str  # the submodule of the model that torch.compile wraps
    compile_layouts: tuple[bool, ...]  # channels_last settings of the compiled rows


GPU_PLAN = Plan(
    {"480p": (480, 854), "624p": (624, 1110)},
    41,
    5,
    100,
    3,
    (384, 640),
    12,
    (480, 854),
    4,
    20,
    "inductor",
    "backbone",
    (False, True),
)
# CPU mode: tracing the whole backbone takes ~20 s on 2 cores; one residual stage exercises the same code
CPU_PLAN = Plan(
    {"480p": (64, 112), "624p": (80, 144)},
    3,
    2,
    2,
    0,
    (64, 96),
    4,
    (72, 112),
    0,
    0,
    "eager",
    "backbone.layer1",
    (False,),
)


@dataclass
class Row:
    case: str
    size: str = ""
    objects: str = ""
    precision: str = ""
    channels_last: str = ""
    compiled: str = ""
    sdpa: str = ""
    speed: str = ""
    memory: str = ""
    check: str = ""
    ok: bool = True
    values: dict = field(default_factory=dict)

    def cells(self) -> list[str]:
        return [
            self.case,
            self.size,
            self.objects,
            self.precision,
            self.channels_last,
            self.compiled,
            self.sdpa,
            self.speed,
            self.memory,
            self.check,
        ]


HEADER = [
    "case",
    "input",
    "objects",
    "precision",
    "channels_last",
    "torch.compile",
    "SDPA matching / decoder",
    "speed",
    "peak memory GB",
    "check",
]


# ------------------------------------------------------------------------------------------ helpers


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    else:
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux)


def peak_gb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 1e9
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / 1e9
    return math.nan


def autocast(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager:
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def sdpa_backends(fn) -> str:
    """The SDPA kernels ``fn()`` ran, from the profiler's op names (``none`` if it called no SDPA)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    names = {event.key for event in prof.key_averages()}
    found = sorted({label for op, label in SDPA_OPS.items() if op in names})
    return "+".join(found) or "none"


def synthetic_video(size: tuple[int, int], frames: int):
    """``(frames (T, H, W, 3) uint8, index mask of frame 0)`` with 5 target objects."""
    from tamvt.data.synthetic import SynthConfig, iter_video

    video = iter_video(
        SynthConfig(
            size=size, length=frames, num_objects=5, events=("cut",) if frames >= 12 else (), num_distractors=2, seed=3
        )
    )
    rendered = [video.render(i) for i in range(frames)]
    return np.stack([f for f, _ in rendered]), rendered[0][1]


def build_r50(device: torch.device):
    from tamvt.config import load_preset
    from tamvt.models.tamvt import build_tamvt

    torch.manual_seed(0)
    return build_tamvt(load_preset("tamvt-r50").model).to(device).eval()


# ------------------------------------------------------------------------------------------ inference


def inference_row(
    model,
    device: torch.device,
    plan: Plan,
    video,
    label: str,
    objects: int,
    bf16: bool,
    channels_last: bool,
    compiled: bool,
) -> Row:
    from tamvt.config import InferenceConfig
    from tamvt.inference import Predictor
    from tamvt.inference.source import ArrayFrames

    frames, mask0 = video
    ids = [int(k) for k in np.unique(mask0) if k != 0][:objects]
    size = tuple(frames.shape[1:3])
    row = Row(
        "inference",
        f"{label} {size[0]}x{size[1]}",
        str(len(ids)),
        "bf16 autocast" if bf16 else "fp32",
        "yes" if channels_last else "no",
        f"{plan.compile_backend} ({plan.compile_module})" if compiled else "no",
    )
    model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    predictor = Predictor(
        model,
        InferenceConfig(short_side=None, precision="bf16" if bf16 else "fp32"),
        clip_length=2,
        channels_last=channels_last,
    )

    def run(n: int) -> int:
        session = predictor.start(ArrayFrames(frames[:n]))
        for obj in ids:
            predictor.add_mask(session, 0, obj, mask0 == obj)
        count = 0
        for _, result in predictor.propagate(session):
            count += 1
            if not torch.isfinite(result.probs).all():
                raise FloatingPointError(f"non-finite probabilities in frame {result.frame_idx}")
        return count

    start = time.perf_counter()
    run(plan.warmup_frames)  # cuDNN autotuning, allocator growth, compilation
    warm_s = time.perf_counter() - start
    sync(device)
    reset_peak(device)
    start = time.perf_counter()
    count = run(len(frames))
    sync(device)
    seconds = time.perf_counter() - start
    fps = count / seconds
    row.values = {"fps": fps, "peak_gb": peak_gb(device), "warmup_s": warm_s}
    row.speed = f"{fps:.2f} frames/s"
    row.memory = f"{row.values['peak_gb']:.2f}"

    # which attention kernels run, with a full memory (the sizes decide between kernels)
    x = torch.from_numpy(frames[:2]).permute(0, 3, 1, 2).float().div(255).to(device)
    masks = torch.stack([torch.from_numpy(mask0 == obj) for obj in ids])[:, None].float().to(device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), autocast(device, bf16):
        clip = model.encode_frames(x)
        entries = [model.encode_memory(clip.select(0), masks)] * model.bank_size
        z = model.match(clip, entries)
        row.sdpa = (
            f"{sdpa_backends(lambda: model.match(clip, entries))} / {sdpa_backends(lambda: model.decode(clip, z))}"
        )
    row.ok = math.isfinite(fps) and fps > 0
    row.check = "probabilities finite" + (f"; warm-up + compile {warm_s:.0f} s" if compiled else "")
    return row


def inference_rows(device: torch.device, plan: Plan) -> list[Row]:
    rows = []
    model = build_r50(device)
    videos = {label: synthetic_video(size, plan.frames) for label, size in plan.sizes.items()}
    first = next(iter(plan.sizes))
    for label in plan.sizes:
        for objects in (1, 5):
            for bf16 in (False, True):
                rows.append(
                    guarded(
                        inference_row,
                        f"inference {label} {objects} obj",
                        model,
                        device,
                        plan,
                        videos[label],
                        label,
                        objects,
                        bf16,
                        False,
                        False,
                    )
                )
    base = next((r for r in rows if r.size.startswith(first) and r.objects == "1" and r.precision != "fp32"), Row(""))
    rows.append(
        guarded(
            inference_row, "inference channels_last", model, device, plan, videos[first], first, 1, True, True, False
        )
    )
    del model
    for channels_last in plan.compile_layouts:  # a fresh model: compilation stays with the module
        compiled = build_r50(device)
        compiled.get_submodule(plan.compile_module).compile(backend=plan.compile_backend)
        rows.append(
            guarded(
                inference_row,
                "inference compiled",
                compiled,
                device,
                plan,
                videos[first],
                first,
                1,
                True,
                channels_last,
                True,
            )
        )
        del compiled
    for row in rows[-1 - len(plan.compile_layouts) :]:  # say which variant gave what
        if "fps" in row.values and "fps" in base.values:
            row.check += f"; x{row.values['fps'] / base.values['fps']:.2f} frames/s vs plain bf16"
    return rows


# ------------------------------------------------------------------------------------------ vector A


def vector_a_probabilities(model, frames: torch.Tensor, mask0: torch.Tensor, bf16: bool) -> torch.Tensor:
    """Vector A's probabilities ``(T-1, H, W)``: the first frame in memory, clips of 2 frames
    through ``step_clip``, the last decoder layer's logits upsampled to the frame (as the authors' test)."""
    import torch.nn.functional as F

    from tamvt.memory import MemoryBank, step_clip

    with torch.inference_mode(), autocast(frames.device, bf16):
        feats = model.encode_frames(frames)
        bank = MemoryBank(9)
        bank.add(model.encode_memory(feats.select(0), mask0))
        clips = [step_clip(model, bank, feats.select(slice(s, s + 2))) for s in range(1, frames.shape[0], 2)]
    logits = torch.cat([c.logits[-1][0].float() for c in clips])
    up = F.interpolate(logits[:, None], size=frames.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    return up.sigmoid().cpu()


def vector_a_row(device: torch.device) -> list[Row]:
    from safetensors.torch import load_file

    from tamvt.official import convert_official

    data = load_file(FIXTURE)
    weights = {k: v.float() for k, v in data.items() if not k.startswith(("A.", "B.", "C.", "D."))}
    torch.manual_seed(0)
    model = convert_official(weights)[0].to(device).eval()
    frames, mask0 = data["A.frames"].to(device), data["A.mask0"].to(device)

    def probs(bf16: bool) -> torch.Tensor:
        return vector_a_probabilities(model, frames, mask0, bf16)

    tf32 = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        p32 = probs(False)
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
    p16 = probs(True)
    authors = (p32 - data["A.probs"]).abs().max().item()
    delta = (p16 - p32).abs()
    flips = ((p16 > 0.5) != (p32 > 0.5)).float().mean().item()
    size = f"{frames.shape[-2]}x{frames.shape[-1]}"
    fp32 = Row(
        "vector A fp32 vs authors",
        size,
        "1",
        "fp32, TF32 off",
        check=f"max abs dp {authors:.2e} <= {FP32_BOUND:g}",
        ok=authors <= FP32_BOUND,
        values={"max": authors},
    )
    bf16 = Row(
        "vector A bf16 vs fp32",
        size,
        "1",
        "bf16 autocast",
        check=f"max abs dp {delta.max().item():.4f} <= {BF16_MAX_BOUND:g}, mean {delta.mean().item():.5f} "
        f"<= {BF16_MEAN_BOUND:g}; {100 * flips:.2f} % of pixels change side of 0.5",
        ok=delta.max().item() <= BF16_MAX_BOUND and delta.mean().item() <= BF16_MEAN_BOUND,
        values={"max": delta.max().item(), "mean": delta.mean().item()},
    )
    return [fp32, bf16]


# ------------------------------------------------------------------------------------------ training


def train_overrides(device: torch.device, plan: Plan, steps: int) -> list[str]:
    (h, w), (sh, sw) = plan.crop, plan.synthetic_size
    return [
        "data.source=synthetic",
        f"data.crop_size=[{h},{w}]",
        f"data.synthetic_size=[{sh},{sw}]",
        f"data.window_length={plan.window}",
        "data.scale_range=[1.0,1.2]",
        f"optim.steps={steps}",
        f"run.device={device.type}",
        f"run.num_workers={plan.workers}",
        "run.progress=false",
        "run.checkpoint_every=1000000",
        "val.source=synthetic",
        "val.num_videos=1",
        "val.synthetic_preset=tiny",
        f"val.synthetic_size=[{sh},{sw}]",
        "val.short_side=null",
    ]


def training_row(device: torch.device, plan: Plan) -> Row:
    from tamvt.train.config import load_train_config
    from tamvt.train.precision import use_bf16
    from tamvt.train.trainer import Trainer

    total = plan.train_warmup + plan.train_steps
    cfg = load_train_config("finetune-vost", train_overrides(device, plan, total))
    row = Row(
        "train finetune-vost (synthetic)",
        f"{plan.window} x {plan.crop[0]}x{plan.crop[1]}",
        "1",
        "bf16 autocast" if use_bf16(cfg.run.precision, device) else "fp32",
        "no",
        "no",
        "",
    )
    with tempfile.TemporaryDirectory(prefix="tamvt-gpu-check-") as tmp:
        trainer = Trainer(cfg, tmp, resume="never")
        loader = iter(trainer._loader())
        for _ in range(plan.train_warmup):  # CPU mode: none (the numbers there are not the point)
            trainer.train_step(next(loader))
        sync(device)
        reset_peak(device)
        losses = []
        start = time.perf_counter()
        for _ in range(plan.train_steps):
            losses.append(trainer.train_step(next(loader))["total"])
        sync(device)
        seconds = time.perf_counter() - start
        trainer.step = total
        trainer.save()  # every rank's RNG, CUDA included
        scores = trainer.run_validation()
        resumed = Trainer(cfg, tmp, resume="auto")
        resumed_ok = resumed.step == total
        del loader, trainer, resumed
    finite = all(math.isfinite(v) for v in losses)
    rate = plan.train_steps / seconds
    row.values = {"steps_per_s": rate, "peak_gb": peak_gb(device), "loss": losses[-1]}
    row.speed = f"{rate:.2f} steps/s"
    row.memory = f"{row.values['peak_gb']:.2f}"
    row.ok = finite and resumed_ok and math.isfinite(rate)
    row.check = (
        f"{plan.train_steps} steps, losses finite: {'yes' if finite else 'NO'} (last {losses[-1]:.3f}); "
        f"checkpoint + resume: {'ok' if resumed_ok else 'FAILED'}; validation J&F "
        f"{scores.get('J&F', float('nan')):.3f}"
    )
    return row


DDP_SCRIPT = textwrap.dedent("""
    import json, sys, time, torch
    from tamvt.train.config import load_train_config
    from tamvt.train.trainer import Trainer
    from tamvt.train import distributed as D
    cfg = load_train_config("finetune-vost", json.loads(sys.argv[2]))
    trainer = Trainer(cfg, sys.argv[1], resume="never")
    loader = iter(trainer._loader())
    trainer.train_step(next(loader))
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    steps, start, losses = int(sys.argv[3]), time.perf_counter(), []
    for _ in range(steps):
        losses.append(trainer.train_step(next(loader))["total"])
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    total = torch.stack([p.detach().double().sum() for p in trainer.net.parameters()]).sum().reshape(1)
    sums = [torch.zeros_like(total) for _ in range(trainer.dist.world_size)]
    torch.distributed.all_gather(sums, total)
    if trainer.dist.is_main:
        print(json.dumps({"steps_per_s": steps / seconds, "losses": losses, "world": trainer.dist.world_size,
                          "backend": torch.distributed.get_backend(),
                          "same_weights": len({s.item() for s in sums}) == 1,
                          "peak_gb": torch.cuda.max_memory_allocated() / 1e9}))
    D.cleanup()
""")


def ddp_row(device: torch.device, plan: Plan) -> Row:
    row = Row(
        "train DDP, 2 processes", f"{plan.window} x {plan.crop[0]}x{plan.crop[1]}", "1", "bf16 autocast", "no", "no", ""
    )
    if device.type != "cuda" or torch.cuda.device_count() < 2:
        have = torch.cuda.device_count() if torch.cuda.is_available() else 0
        row.check = f"skipped: needs 2 CUDA GPUs, {have} here (gloo DDP on CPU: tests/test_train_ddp.py)"
        return row
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="tamvt-gpu-ddp-") as tmp:
        script = Path(tmp) / "ddp.py"
        script.write_text(DDP_SCRIPT)
        overrides = train_overrides(device, plan, plan.ddp_steps + 1) + ["val.source=none"]
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nnodes",
            "1",
            "--nproc_per_node",
            "2",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(port),
            str(script),
            str(Path(tmp) / "run"),
            json.dumps(overrides),
            str(plan.ddp_steps),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"torchrun failed: {proc.stderr.strip().splitlines()[-1:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    finite = all(math.isfinite(v) for v in out["losses"])
    row.values = out
    row.speed = f"{out['steps_per_s']:.2f} steps/s per process"
    row.memory = f"{out['peak_gb']:.2f}"
    row.ok = finite and out["same_weights"] and out["backend"] == "nccl"
    row.check = (
        f"{plan.ddp_steps} steps, backend {out['backend']}, losses finite: {'yes' if finite else 'NO'}, "
        f"identical weights on both ranks: {'yes' if out['same_weights'] else 'NO'}"
    )
    return row


# ------------------------------------------------------------------------------------------ main


def guarded(fn, case: str, *args) -> Row:
    """``fn(*args)``, or a failed row with the exception (one broken case does not hide the others)."""
    start = time.perf_counter()
    try:
        return fn(*args)
    except Exception as err:  # noqa: BLE001 - reported in the table and in the exit status
        traceback.print_exc()
        return Row(case, check=f"FAILED: {type(err).__name__}: {str(err)[:200]}", ok=False)
    finally:
        print(f"[{case}: {time.perf_counter() - start:.1f} s]", file=sys.stderr, flush=True)


def print_table(rows: list[Row]) -> None:
    print("| " + " | ".join(HEADER) + " |")
    print("|" + "---|" * len(HEADER))
    for row in rows:
        print("| " + " | ".join(c.replace("|", "/") for c in row.cells()) + " |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto (cuda when available), cuda, cuda:N or cpu")
    parser.add_argument("--json", type=Path, help="also write the rows' values here")
    args = parser.parse_args()

    from tamvt.devices import resolve_device

    device = resolve_device(args.device)
    plan = GPU_PLAN if device.type == "cuda" else CPU_PLAN
    start = time.perf_counter()
    if device.type == "cuda":
        torch.cuda.set_device(device)
        name = torch.cuda.get_device_name(device)
        print(
            f"device {device}: {name}, {torch.cuda.device_count()} GPU(s), torch {torch.__version__}, "
            f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}",
            flush=True,
        )
    else:
        print(
            f"device cpu (tiny sizes: this mode exercises the code paths; its numbers are not GPU figures), "
            f"torch {torch.__version__}, {torch.get_num_threads()} threads",
            flush=True,
        )
    rows = inference_rows(device, plan)
    checked = guarded(vector_a_row, "vector A", device)
    rows += checked if isinstance(checked, list) else [checked]
    rows.append(guarded(training_row, "train finetune-vost (synthetic)", device, plan))
    rows.append(guarded(ddp_row, "train DDP, 2 processes", device, plan))
    print()
    print_table(rows)
    failed = [r.case for r in rows if not r.ok]
    print()
    print(
        f"{len(rows)} rows in {time.perf_counter() - start:.0f} s; "
        + (f"FAILED: {', '.join(failed)}" if failed else "all checks passed")
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                [{**dict(zip(HEADER, r.cells(), strict=True)), "ok": r.ok, "values": r.values} for r in rows],
                indent=1,
                default=str,
            )
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
