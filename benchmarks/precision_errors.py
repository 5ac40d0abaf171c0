"""Where bf16 autocast loses accuracy: the authors' vector A (tests/fixtures/official) run in fp32
with every module call and the model's stage methods recorded, then each recorded call run again
under bf16 autocast on the *same fp32 inputs*. A call's local error is what its own arithmetic adds;
the end-to-end |dp| (probabilities, bf16 vs fp32 from the start) is printed last.

    python benchmarks/precision_errors.py [--top 25] [--device cpu] [--islands]

``--islands``: the end-to-end |dp| again with one part of the model at a time kept in fp32 (autocast
off and its inputs cast to fp32): what an fp32 island there would win.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections import defaultdict
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "official" / "tamvt_official_vectors.safetensors"


def tensors(x) -> list[torch.Tensor]:
    """Every floating tensor inside ``x`` (tensors, lists, tuples, dicts, dataclasses)."""
    if isinstance(x, torch.Tensor):
        return [x] if x.is_floating_point() else []
    if isinstance(x, (list, tuple)):
        return [t for v in x for t in tensors(v)]
    if isinstance(x, dict):
        return [t for v in x.values() for t in tensors(v)]
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return [t for f in dataclasses.fields(x) for t in tensors(getattr(x, f.name))]
    return []


def load_model(device: torch.device):
    from safetensors.torch import load_file

    from tamvt.official import convert_official

    data = load_file(FIXTURE)
    weights = {k: v.float() for k, v in data.items() if not k.startswith(("A.", "B.", "C.", "D."))}
    torch.manual_seed(0)
    model = convert_official(weights)[0].to(device).eval()
    return model, data["A.frames"].to(device), data["A.mask0"].to(device)


def probabilities(model, frames, mask0, dtype: torch.dtype | None) -> torch.Tensor:
    """Vector A's probabilities ``(T-1, H, W)``, in bf16 autocast when ``dtype`` is given."""
    from gpu_check import vector_a_probabilities  # benchmarks/ is the script's folder, first on sys.path

    return vector_a_probabilities(model, frames, mask0, dtype is not None)


def local_errors(model, frames, mask0, dtype: torch.dtype) -> dict[str, list[float]]:
    """Per module / method name: the relative error ``max|o_bf16 - o_fp32| / max|o_fp32|`` of each of
    its calls, every call re-run under autocast on the inputs it got in the fp32 run."""
    from tamvt.models.mask_head import MaskHead
    from tamvt.models.matching import MatchingBlock

    calls: list[tuple[str, object, tuple, dict, list[torch.Tensor]]] = []
    recording = [True]

    def record(name, fn):
        def wrapper(*args, **kwargs):
            out = fn(*args, **kwargs)
            if recording[0]:  # copies: in-place ops (ReLU) change outputs after the call
                calls.append((name, fn, args, kwargs, [t.clone() for t in tensors(out)]))
            return out

        return wrapper

    originals = []
    for name, module in model.named_modules():
        if name:
            originals.append((module, "forward", module.forward))
            module.forward = record(f"{name} ({type(module).__name__})", module.forward)
    for name, module in model.named_modules():
        methods = {MatchingBlock: ("attend", "project_keys", "project_queries"), MaskHead: ("project",)}
        for cls, names in methods.items():
            if isinstance(module, cls):
                for m in names:
                    originals.append((module, m, getattr(module, m)))
                    setattr(module, m, record(f"{name}.{m}", getattr(module, m)))
    for m in ("encode_frames", "encode_memory", "match", "decode"):
        originals.append((model, m, getattr(model, m)))
        setattr(model, m, record(m, getattr(model, m)))
    try:
        probabilities(model, frames, mask0, None)
        recording[0] = False
        errors: dict[str, list[float]] = defaultdict(list)
        for name, fn, args, kwargs, out in calls:
            with torch.inference_mode(), torch.autocast(frames.device.type, dtype=dtype):
                again = fn(*args, **kwargs)  # type: ignore[operator]
            ref, new = out, tensors(again)
            scale = max((r.abs().max().item() for r in ref), default=0.0)
            err = max(((n.float() - r.float()).abs().max().item() for r, n in zip(ref, new, strict=True)), default=0.0)
            errors[name].append(err / scale if scale else 0.0)
        return errors
    finally:
        for obj, m, _ in originals:
            if m == "forward":
                del obj.forward  # back to the class's
            else:
                delattr(obj, m)


def cast_fp32(x):
    if isinstance(x, torch.Tensor) and x.is_floating_point():
        return x.float()
    if isinstance(x, (list, tuple)):
        return type(x)(cast_fp32(v) for v in x)
    return x


def fp32_island(obj, name: str, device_type: str):
    """Run ``obj.name`` with autocast off on fp32 inputs; returns the undo."""
    fn = getattr(obj, name)

    def wrapped(*args, **kwargs):
        with torch.autocast(device_type, enabled=False):
            return fn(*[cast_fp32(a) for a in args], **kwargs)

    setattr(obj, name, wrapped)
    return lambda: delattr(obj, name)


def islands(model, frames, mask0, p32: torch.Tensor) -> None:
    parts = {
        "all bf16": [],
        "matching attention (softmax) fp32": [(b, "attend") for b in model.matching.scale_blocks()],
        "matching (RTE products, attention) fp32": [(model.matching, "forward")],
        "decoder + mask head fp32": [(model.decoder, "forward"), (model.mask_head, "project")],
        "backbone fp32": [(model.backbone, "forward")],
    }
    for label, where in parts.items():
        undo = [fp32_island(o, n, frames.device.type) for o, n in where]
        d = (probabilities(model, frames, mask0, torch.bfloat16) - p32).abs()
        for u in undo:
            u()
        print(f"{label:44s} max |dp| {d.max().item():.4f}  mean {d.mean().item():.5f}", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--top", type=int, default=25, help="print the calls with the largest local error")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--islands", action="store_true", help="also: end-to-end |dp| with one part kept in fp32")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    model, frames, mask0 = load_model(device)
    errors = local_errors(model, frames, mask0, torch.bfloat16)
    rows = sorted(((max(v), sum(v) / len(v), len(v), k) for k, v in errors.items()), reverse=True)
    print(f"{'module / method':<60} {'calls':>5} {'max rel':>9} {'mean rel':>9}")
    for mx, mean, n, k in rows[: args.top]:
        print(f"{k[:60]:<60} {n:>5} {mx:9.2e} {mean:9.2e}")
    p32 = probabilities(model, frames, mask0, None)
    p16 = probabilities(model, frames, mask0, torch.bfloat16)
    d = (p16 - p32).abs()
    flips = ((p16 > 0.5) != (p32 > 0.5)).float().mean().item()
    print(
        f"vector A end to end, bf16 vs fp32: max |dp| {d.max().item():.4f}, mean {d.mean().item():.5f}, "
        f"{100 * flips:.2f} % of pixels change side of 0.5"
    )
    if args.islands:
        islands(model, frames, mask0, p32)
    return 0


if __name__ == "__main__":
    sys.exit(main())
