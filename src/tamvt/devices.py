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
