"""AdamW with backbone / rest parameter groups, and the learning-rate schedules (SPEC §4).

The schedule is a pure function of the global step (:class:`StepSchedule`), so resuming needs only
the step count: no scheduler object with hidden state.

* ``paper``: ×``gamma`` at each milestone (paper: lr 2e-4 / 1e-5, 20 epochs, ×0.1 at 8 and 16).
* ``authors``: the same plus one more ×``gamma`` for the last ``final_drop`` epochs (authors'
  script: 1e-4 / 2e-5, 150 epochs, ×0.1 at 60 and 120 and for the last 10).
* ``constant``.

All three are multiplied by a linear warm-up over the first ``warmup_fraction`` of the steps
(factor ``(step + 1) / warmup_steps``, so the very first update is not a no-op).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from tamvt.models.matching import RTE_KEY

Schedule = Literal["paper", "authors", "constant"]


def param_groups(
    model: nn.Module,
    lr: float,
    lr_backbone: float,
    weight_decay: float,
    backbone_prefix: str = "backbone.",
    lr_rte: float | None = None,
    rte_name: str = RTE_KEY,
) -> list[dict]:
    """Two AdamW groups: parameters under ``backbone_prefix`` and all others (a third, ``rte``, holding
    the parameter ``rte_name`` alone when ``lr_rte`` is set: the relative-time-encoding scalars, whose
    blocks for memory sizes a run never trained move slowly at a fine-tuning learning rate).

    Frozen parameters (``requires_grad=False``: the backbone stem and layer1) are left out. With
    ``lr_backbone == 0`` the backbone group is dropped and its parameters are frozen, as the authors
    do. Each group carries ``base_lr`` for the schedule. Parameters shared by two modules (the
    matching pre-LayerNorm) appear once.
    """
    backbone: list[nn.Parameter] = []
    rest: list[nn.Parameter] = []
    rte: list[nn.Parameter] = []
    seen: set[int] = set()
    for name, p in model.named_parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        if lr_rte is not None and name == rte_name:
            rte.append(p)
        else:
            (backbone if name.startswith(backbone_prefix) else rest).append(p)

    def group(name: str, params: list, group_lr: float) -> dict:
        return {"params": params, "lr": group_lr, "base_lr": group_lr, "weight_decay": weight_decay, "name": name}

    groups = [group("rest", rest, lr)]
    if rte and lr_rte is not None:
        groups.append(group("rte", rte, lr_rte))
    if lr_backbone > 0 and backbone:
        groups.append(group("backbone", backbone, lr_backbone))
    else:
        for p in backbone:
            p.requires_grad_(False)
    return groups


def build_adamw(groups: list[dict], betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups`; weight decay and learning rates come from the groups."""
    return torch.optim.AdamW(groups, betas=betas)


@dataclass(frozen=True)
class StepSchedule:
    """Learning-rate factor as a function of the global step.

    Args:
        kind: ``paper`` | ``authors`` | ``constant``.
        total_steps: length of the run in steps.
        steps_per_epoch: steps per epoch (milestones / final_drop are counted in epochs); 1 when
            they are given in steps.
        milestones: epochs (or steps) at which the factor is multiplied by ``gamma``.
        gamma: the drop factor.
        final_drop: ``authors`` only: one more drop for the last ``final_drop`` epochs (or steps).
        warmup_steps: linear warm-up length in steps.
    """

    kind: Schedule
    total_steps: int
    steps_per_epoch: int = 1
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    final_drop: int = 0
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("paper", "authors", "constant"):
            raise ValueError(f"unknown schedule {self.kind!r} (paper, authors, constant)")

    @property
    def total_epochs(self) -> float:
        return self.total_steps / self.steps_per_epoch

    def factor(self, step: int) -> float:
        """Multiplier of the base learning rate for the update made at 0-based ``step``."""
        f = 1.0
        if self.kind != "constant":
            epoch = step // self.steps_per_epoch
            f = self.gamma ** bisect.bisect_right(self.milestones, epoch)
            if self.kind == "authors" and self.final_drop > 0 and epoch >= self.total_epochs - self.final_drop:
                f *= self.gamma
        if step < self.warmup_steps:
            f *= (step + 1) / self.warmup_steps
        return f

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> float:
        """Set every group's ``lr = base_lr * factor(step)``; returns the factor."""
        f = self.factor(step)
        for group in optimizer.param_groups:
            group["lr"] = group["base_lr"] * f
        return f


def build_schedule(
    kind: Schedule,
    total_steps: int,
    steps_per_epoch: int,
    epochs_given: bool,
    milestones: Iterable[int],
    gamma: float,
    final_drop: int,
    warmup_fraction: float,
) -> StepSchedule:
    """A :class:`StepSchedule`; milestones count epochs when ``epochs_given`` else steps."""
    return StepSchedule(
        kind=kind,
        total_steps=total_steps,
        steps_per_epoch=steps_per_epoch if epochs_given else 1,
        milestones=tuple(milestones),
        gamma=gamma,
        final_drop=final_drop,
        warmup_steps=int(round(warmup_fraction * total_steps)) if warmup_fraction > 0 else 0,
    )


def clip_grad_norm(params: Iterable[torch.Tensor], max_norm: float) -> float:
    """Clip the global gradient norm to ``max_norm`` (0 = only measure it); returns the norm before."""
    params = [p for p in params if p.grad is not None]
    if not params:
        return 0.0
    if max_norm > 0:
        return float(torch.nn.utils.clip_grad_norm_(params, max_norm))
    norms = torch.stack([p.grad.detach().float().norm() for p in params if p.grad is not None])
    total = float(norms.norm())
    return total if math.isfinite(total) else float("nan")
