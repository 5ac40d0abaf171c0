"""Which floating-point precision a training run computes in (``run.precision``).

bf16 means :func:`torch.autocast` with ``torch.bfloat16`` around the forward pass on the run's
device (CPU or CUDA); the weights, the AdamW state, the gradients and the loss stay fp32.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from tamvt.devices import native_bf16
from tamvt.train.config import Precision


def use_bf16(precision: Precision | None, device: torch.device) -> bool:
    """Whether a run with ``run.precision`` ``precision`` autocasts to bf16 on ``device``.

    ``None`` is the former default (bf16 on GPU, fp32 on CPU).
    """
    if precision == "bf16":
        return device.type in ("cpu", "cuda")
    if precision == "auto":
        return native_bf16(device)
    if precision is None:
        return device.type == "cuda"
    return False


def autocast(enabled: bool, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on ``device`` when ``enabled``, else a no-op context."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)
