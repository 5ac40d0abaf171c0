"""Training curves from ``RUN_DIR/metrics.jsonl`` (:mod:`tamvt.train.metrics_log`): loss terms,
learning rate and validation J&F / J_tr over steps.

A resumed run appends to the same file and logs again the steps after its checkpoint, so a ``start``
record drops the records logged past its step before it: each step keeps the value of the run that
went on.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tamvt.errors import InputError

VAL_KEYS: tuple[str, ...] = ("J&F", "J_tr", "J", "F")
Series = dict[str, tuple[np.ndarray, np.ndarray]]  # name -> (steps, values)


@dataclass(frozen=True)
class TrainingCurves:
    """Series as ``name -> (steps (n,), values (n,))`` float64, NaN where a value was not finite.

    Attributes:
        losses: ``total`` and every ``loss_*`` term of the train records.
        lr: ``{"lr": ...}`` (the rest group's learning rate), when logged.
        val: the validation scores ``J&F``, ``J_tr``, ``J``, ``F`` present.
    """

    losses: Series
    lr: Series
    val: Series


def effective_records(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The records of the run that went on: a ``start`` at step s drops the earlier records after s."""
    out: list[Mapping[str, Any]] = []
    for rec in records:
        if rec.get("event") == "start":
            step = rec.get("step", 0)
            out = [r for r in out if r.get("step", 0) <= step]
        out.append(rec)
    return out


def _series(records: list[Mapping[str, Any]], event: str, keys: Iterable[str]) -> Series:
    out = {}
    for key in keys:
        pts = [(float(r["step"]), _float(r[key])) for r in records if r.get("event") == event and key in r]
        if pts:
            steps, values = zip(*pts, strict=True)
            out[key] = (np.asarray(steps), np.asarray(values))
    return out


def _float(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else math.nan


def training_curves(run_dir: str | Path) -> TrainingCurves:
    """The curves of a training run folder (or of a ``metrics.jsonl`` file)."""
    from tamvt.train.metrics_log import read_metrics

    path = Path(run_dir)
    path = path / "metrics.jsonl" if path.is_dir() else path
    if not path.is_file():
        raise InputError(path, "no metrics.jsonl (a training run folder written by 'tamvt train')")
    try:
        records = effective_records(read_metrics(path))
    except ValueError as err:
        raise InputError(path, f"not a JSON-lines file ({err})") from None
    train = [r for r in records if r.get("event") == "train"]
    loss_keys = sorted({k for r in train for k in r if k.startswith("loss_")}, key=_loss_order)
    losses = _series(records, "train", ["total", *loss_keys])
    if not losses:
        raise InputError(path, "no training records (event 'train') yet")
    return TrainingCurves(losses, _series(records, "train", ["lr"]), _series(records, "val", VAL_KEYS))


def _loss_order(key: str) -> tuple[int, int, str]:
    """``loss_mask``, ``loss_dice`` (the prediction) first, then the auxiliary layers in order."""
    head, _, layer = key.rpartition("_")
    return (1, int(layer), head) if layer.isdigit() else (0, 0, key)


def plot_training(curves: TrainingCurves, title: str = "") -> Any:
    """Three panels over steps: total loss and its terms (log scale), learning rate, validation scores."""
    from tamvt.viz.figure import new_figure

    fig = new_figure(8.0, 7.0)
    ax_loss, ax_lr, ax_val = fig.subplots(3, 1, sharex=True, height_ratios=[1.6, 0.8, 1.2])
    for name, (steps, values) in curves.losses.items():
        final = name in ("total", "loss_mask", "loss_dice")
        line = ax_loss.plot(
            steps, values, lw=1.5 if final else 0.8, alpha=1.0 if final else 0.5, ls="-" if final else "--", label=name
        )[0]
        line.set_gid(f"loss-{name}")
    ax_loss.set_yscale("log")
    ax_loss.set_ylabel("loss (mean per log interval)")
    ax_loss.legend(fontsize=7, ncol=2)
    if "lr" in curves.lr:
        steps, values = curves.lr["lr"]
        ax_lr.plot(steps, values, color="tab:purple", lw=1.2)[0].set_gid("lr")
        if np.nanmin(values) > 0:
            ax_lr.set_yscale("log")
    else:
        ax_lr.text(0.5, 0.5, "no learning rate logged", transform=ax_lr.transAxes, ha="center", va="center")
    ax_lr.set_ylabel("learning rate")
    if curves.val:
        for name, (steps, values) in curves.val.items():
            main = name in ("J&F", "J_tr")
            ax_val.plot(
                steps, values, marker="o", ms=3, lw=1.5 if main else 0.8, alpha=1.0 if main else 0.6, label=name
            )[0].set_gid(f"val-{name}")
        ax_val.set_ylim(0, 1)
        ax_val.legend(fontsize=8)
    else:
        ax_val.text(0.5, 0.5, "no validation records", transform=ax_val.transAxes, ha="center", va="center")
    ax_val.set_ylabel("validation")
    ax_val.set_xlabel("step")
    fig.suptitle(f"training {title}".strip(), fontsize=10)
    return fig
