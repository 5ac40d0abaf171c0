"""Where to run: the one device rule of training, inference and the commands."""

from __future__ import annotations

import torch

from tamvt.errors import TamvtError


def resolve_device(name: str | torch.device, local_rank: int = 0) -> torch.device:
    """``auto`` -> ``cuda:<local_rank>`` when CUDA is available, else ``cpu``; ``cuda`` ->
    ``cuda:<local_rank>``; ``cpu`` and ``cuda:N`` as given. A CUDA device on a machine without CUDA
    and an unknown name are :class:`TamvtError` s."""
    name = str(name)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        name = f"cuda:{local_rank}"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TamvtError(f"device {name}: no CUDA device is available on this machine")
    try:
        return torch.device(name)
    except RuntimeError:
        raise TamvtError(f"unknown device {name!r} (auto, cpu, cuda, cuda:N)") from None


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes in bfloat16 natively: a CPU with AVX512-BF16 or AMX (as torch detects
    them; without them oneDNN emulates bf16, slower than fp32), a CUDA device of compute capability
    8.0 or newer (Ampere). Other devices: False."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.get_device_capability(device)[0] >= 8
    if device.type == "cpu":
        # private probes, present in torch 2.9 .. 2.14; an older or newer torch without them: no bf16
        cpu = torch.cpu
        for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
            check = getattr(cpu, probe, None)
            if check is not None and bool(check()):
                return True
    return False


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of an inference ``precision`` on ``device``: ``bf16`` -> bfloat16 on CPU and
    CUDA; ``auto`` -> bfloat16 on a CPU where :func:`native_bf16`, else None (fp32 on CUDA: online
    inference there launches kernels faster than the GPU runs them, and autocast's casts were 25-50 %
    more kernels for no less GPU time: slower on an H200, docs/benchmarks.md "On a GPU");
    ``fp32`` -> None (no autocast)."""
    if precision not in ("fp32", "bf16", "auto"):
        raise TamvtError(f"unknown precision {precision!r} (fp32, bf16, auto)")
    if device.type not in ("cpu", "cuda") or precision == "fp32":
        return None
    if precision == "auto" and device.type == "cuda":
        return None
    if precision == "bf16" or native_bf16(device):
        return torch.bfloat16
    return None
