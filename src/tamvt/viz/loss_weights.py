"""Transformation-aware frame weights of a ground-truth mask sequence over time (paper Fig. A5a).

The weights are :func:`tamvt.losses.frame_weights` -- the function the training loss calls -- on
one object's masks: over the whole sequence, or over consecutive windows of ``window`` frames (what
the loss sees in training: the query frames of one window; each window's first frame gets weight 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tamvt.config import Reweighting
from tamvt.errors import InputError, TamvtError
from tamvt.losses import VOID, frame_weights

KINDS: tuple[Reweighting, ...] = ("area", "centroid", "components")


@dataclass(frozen=True)
class LossWeightCurves:
    """Frame weights of one object.

    Attributes:
        object_id: the object; frames: frame names (one per mask, in order).
        area: ``(T,)`` object pixels per frame; frame_pixels: ``H * W``.
        weights: kind -> ``(T,)`` float64 weights.
        tau: temperature; window: frames per window (``None``: the whole sequence is one window).
    """

    object_id: int
    frames: tuple[str, ...]
    area: np.ndarray
    frame_pixels: int
    weights: dict[Reweighting, np.ndarray]
    tau: float
    window: int | None


def read_mask_folder(folder: str | Path) -> tuple[tuple[str, ...], np.ndarray]:
    """Frame names and ``(T, H, W)`` uint8 ids of the index PNGs in ``folder`` (natural order)."""
    from tamvt.data.images import list_mask_files
    from tamvt.data.palette import read_index_png

    folder = Path(folder)
    paths = list_mask_files(folder)
    if not paths:
        raise InputError(folder, "no mask PNGs in the folder")
    masks: list[np.ndarray] = []
    for path in paths:
        ids, _ = read_index_png(path)
        if masks and ids.shape != masks[0].shape:
            raise InputError(
                path,
                f"mask size {ids.shape[1]}x{ids.shape[0]} differs from the first mask's "
                f"{masks[0].shape[1]}x{masks[0].shape[0]}",
            )
        masks.append(ids)
    return tuple(p.stem for p in paths), np.stack(masks)


def object_ids(masks: np.ndarray) -> list[int]:
    """Object ids present in any frame (0 and void 255 excluded)."""
    present = np.flatnonzero(np.bincount(masks.ravel(), minlength=256))
    return [int(i) for i in present if i not in (0, VOID)]


def loss_weight_curves(
    frames: Sequence[str],
    masks: np.ndarray,
    object_id: int,
    tau: float = 1.0,
    kinds: Sequence[Reweighting] = KINDS,
    window: int | None = None,
) -> LossWeightCurves:
    """Weights of every ``kind`` for object ``object_id`` of ``masks (T, H, W)`` ids."""
    if tau <= 0:
        raise TamvtError(f"--tau must be > 0, got {tau}")
    if window is not None and window < 1:
        raise TamvtError(f"--window must be >= 1, got {window}")
    obj = torch.from_numpy(masks == object_id)  # (T, H, W) bool; void is background, as in the loss
    t = obj.shape[0]
    step = window or t
    weights = {
        kind: torch.cat([frame_weights(obj[s : s + step], kind, tau) for s in range(0, t, step)]).double().numpy()
        for kind in kinds
    }
    area = obj.flatten(1).sum(1).numpy().astype(np.int64)
    return LossWeightCurves(object_id, tuple(frames), area, int(masks.shape[1] * masks.shape[2]), weights, tau, window)


def plot_loss_weights(curves: LossWeightCurves) -> Any:
    """Weights over time (one line per kind) above the object's area curve."""
    from tamvt.viz.figure import new_figure

    fig = new_figure(8.0, 4.6)
    ax_w, ax_a = fig.subplots(2, 1, sharex=True, height_ratios=[1.6, 1])
    x = np.arange(len(curves.frames))
    styles = {"area": ("tab:blue", "o"), "centroid": ("tab:orange", "s"), "components": ("tab:green", "^")}
    for kind, w in curves.weights.items():
        color, marker = styles.get(kind, (None, "o"))
        line = ax_w.plot(x, w, color=color, marker=marker, ms=3, lw=1.2, label=kind)[0]
        line.set_gid(f"weights-{kind}")
    ax_w.axhline(1.0, color="0.6", lw=0.8, ls="--")
    ax_w.set_ylabel("frame weight w_t")
    ax_w.legend(fontsize=8, title=f"τ = {curves.tau:g}", title_fontsize=8)
    where = f"windows of {curves.window} frames" if curves.window else "the whole sequence as one window"
    ax_w.set_title(f"transformation-aware loss weights, object {curves.object_id} ({where})", fontsize=10)
    pct = 100.0 * curves.area / curves.frame_pixels
    line = ax_a.plot(x, pct, color="0.25", lw=1.2)[0]
    line.set_gid("area")
    ax_a.set_ylabel("area (% of frame)")
    ax_a.set_xlabel("frame")
    if curves.window:
        for s in range(curves.window, len(x), curves.window):
            for ax in (ax_w, ax_a):
                ax.axvline(s - 0.5, color="0.75", lw=0.8)
    names = curves.frames
    ticks = x[:: max(1, len(x) // 12)]
    ax_a.set_xticks(ticks, [names[i] for i in ticks], fontsize=7, rotation=45 if len(names[0]) > 4 else 0)
    return fig
