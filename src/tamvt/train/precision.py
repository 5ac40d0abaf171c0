"""Which floating-point precision a training run computes in (``run.precision``).

bf16 means :func:`torch.autocast` with ``torch.bfloat16`` around the forward pass on the run's
device (CPU or CUDA); the weights, the AdamW state, the gradients and the loss stay fp32.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from tamvt.train.config import Precision


def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bf16 matmuls natively (AVX512-BF16 or AMX) through oneDNN."""
    try:
        if not torch.backends.mkldnn.is_available():
            return False
        checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
        if any(check is not None for check in checks):
            return any(bool(check()) for check in checks if check is not None)
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # an older / stripped build without the probes
        return False


def device_has_native_bf16(device: torch.device) -> bool:
    """True when ``device`` runs bf16 at least as fast as fp32 (a bf16 GPU, or a CPU with native bf16)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        return cpu_has_native_bf16()
    return False


def use_bf16(precision: Precision | None, device: torch.device) -> bool:
    """Whether a run with ``run.precision`` ``precision`` autocasts to bf16 on ``device``.

    ``None`` is the former default (bf16 on GPU, fp32 on CPU).
    """
    if precision == "bf16":
        return device.type in ("cpu", "cuda")
    if precision == "auto":
        return device_has_native_bf16(device)
    if precision is None:
        return device.type == "cuda"
    return False


def autocast(enabled: bool, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on ``device`` when ``enabled``, else a no-op context."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)
