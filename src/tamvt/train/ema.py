"""Exponential moving average of a model's weights (the authors' ``update_ema``, decay 0.9998).

The average is kept as a plain ``{name: tensor}`` copy of the model's ``state_dict`` (parameters and
buffers), so it checkpoints as-is and loads into a fresh model with ``load_state_dict``.
Floating-point entries are averaged, ``ema = decay·ema + (1−decay)·w``; other entries (integer
buffers) are copied.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (or the module itself)."""
    inner = getattr(model, "module", None)
    return inner if isinstance(inner, nn.Module) else model


class ModelEma:
    """EMA weights of ``model``.

    Args:
        model: the trained model (DDP-wrapped is fine).
        decay: weight of the old average per update.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.state: dict[str, Tensor] = {k: v.detach().clone() for k, v in unwrap(model).state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One EMA step from the model's current weights."""
        for key, value in unwrap(model).state_dict().items():
            avg = self.state[key]
            if avg.is_floating_point():
                avg.mul_(self.decay).add_(value.detach().to(avg.dtype), alpha=1.0 - self.decay)
            else:
                avg.copy_(value)

    def state_dict(self) -> dict[str, Tensor]:
        return self.state

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        missing = set(self.state) - set(state)
        unexpected = set(state) - set(self.state)
        if missing or unexpected:
            raise KeyError(
                f"EMA state does not match the model (missing {sorted(missing)[:3]}, "
                f"unexpected {sorted(unexpected)[:3]})"
            )
        for key, value in state.items():
            self.state[key].copy_(value)

    def copy_to(self, model: nn.Module) -> None:
        """Load the averaged weights into ``model`` (e.g. a separate evaluation copy)."""
        unwrap(model).load_state_dict(self.state)
