"""Scores of ``tamvt eval --json``: per-sequence J&F bars and J over time per object.

Works on the JSON report (:func:`tamvt.evaluation.report.to_json`), read from a file or built in
memory by ``tamvt eval --html``. A sequence's J&F is the toolkit's formula over its objects,
``(mean J + mean F) / 2`` (as in the console table); J over time needs the report's ``per_frame``
entries (reports written before they existed give the bars only).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tamvt.errors import InputError
from tamvt.evaluation.metrics import j_tr_values


@dataclass(frozen=True)
class SequenceScore:
    """One bar: ``jf`` = (mean J + mean F) / 2 over the sequence's objects; ``objects``: id -> J&F."""

    name: str
    jf: float
    objects: dict[int, float]


@dataclass(frozen=True)
class ObjectCurve:
    """Per-frame J of one object: ``frames`` (names) and ``j`` ``(N,)`` float64 (NaN for null)."""

    object: int
    frames: tuple[str, ...]
    j: np.ndarray


def read_report(path: str | Path) -> dict[str, Any]:
    """A JSON report of ``tamvt eval --json`` (checked for its ``per_object`` list)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        report = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise InputError(path, f"not JSON ({err})") from None
    if not isinstance(report, dict) or not isinstance(report.get("per_object"), list):
        raise InputError(path, "not a report of 'tamvt eval --json' (no per_object list)")
    return report


def _f(v: Any) -> float:
    return math.nan if v is None else float(v)


def _nanmean(values: list[float]) -> float:
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[~np.isnan(arr)]
    return float(arr.mean()) if arr.size else math.nan


def sequence_scores(report: Mapping[str, Any]) -> list[SequenceScore]:
    """One :class:`SequenceScore` per sequence, in report order."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for entry in report["per_object"]:
        groups.setdefault(str(entry["sequence"]), []).append(entry)
    out = []
    for name, entries in groups.items():
        jm = _nanmean([_f(e["J-Mean"]) for e in entries])
        fm = _nanmean([_f(e["F-Mean"]) for e in entries])
        out.append(SequenceScore(name, (jm + fm) / 2, {int(e["object"]): _f(e["J&F-Mean"]) for e in entries}))
    return out


def object_curves(report: Mapping[str, Any]) -> dict[str, list[ObjectCurve]]:
    """Sequence -> per-frame J of its objects (empty when the report has no ``per_frame``)."""
    out: dict[str, list[ObjectCurve]] = {}
    for entry in report.get("per_frame") or []:
        curve = ObjectCurve(int(entry["object"]), tuple(entry["frames"]), np.array([_f(v) for v in entry["J"]]))
        out.setdefault(str(entry["sequence"]), []).append(curve)
    return out


def plot_sequence_bars(report: Mapping[str, Any]) -> Any:
    """Horizontal J&F bars per sequence (%), each object as a dot, the global J&F as a line."""
    from tamvt.viz.figure import new_figure

    seqs = sequence_scores(report)
    fig = new_figure(7.0, 1.2 + 0.28 * max(len(seqs), 3))
    ax = fig.subplots()
    y = np.arange(len(seqs))
    bars = ax.barh(y, [100 * s.jf for s in seqs], color="tab:blue", alpha=0.75, height=0.7)
    for i, bar in enumerate(bars):
        bar.set_gid(f"jf-bar-{i}")
    for i, s in enumerate(seqs):
        vals = [100 * v for v in s.objects.values() if not math.isnan(v)]
        ax.plot(vals, [i] * len(vals), "o", color="black", ms=3)
    overall = (report.get("global") or {}).get("J&F-Mean")
    if overall is not None:
        ax.axvline(100 * overall, color="tab:red", lw=1, ls="--", label=f"global J&F {100 * overall:.1f}")
        ax.legend(fontsize=8, loc="lower right")
    ax.set_yticks(y, [s.name for s in seqs], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("J&F (%)  (bars: sequences; dots: objects)")
    ax.set_title(f"J&F per sequence ({report.get('protocol', '?')} protocol)", fontsize=10)
    return fig


def plot_j_over_time(sequence: str, curves: list[ObjectCurve]) -> Any:
    """J per evaluated frame, one line per object; the frames J_tr averages are shaded."""
    from tamvt.viz.figure import new_figure

    fig = new_figure(7.5, 3.2)
    ax = fig.subplots()
    names = sorted({f for c in curves for f in c.frames}, key=_frame_key)
    numeric = all(n.isdigit() for n in names)
    pos = {n: (int(n) if numeric else i) for i, n in enumerate(names)}
    for c in curves:
        x = np.array([pos[f] for f in c.frames], dtype=np.float64)
        line = ax.plot(x, 100 * c.j, marker="o", ms=2.5, lw=1.2, label=f"object {c.object}")[0]
        line.set_gid(f"j-object-{c.object}")
        tail = len(c.j) - len(j_tr_values(c.j))
        if tail < len(x):
            ax.axvspan(x[tail], x[-1], color=line.get_color(), alpha=0.08)
    ax.set_ylim(0, 102)
    ax.set_ylabel("J (%)")
    ax.set_xlabel("frame" if numeric else "evaluated frame")
    ax.set_title(f"{sequence}: J over time (shaded: the frames J_tr averages)", fontsize=10)
    ax.legend(fontsize=8)
    return fig


def _frame_key(name: str) -> tuple:
    from tamvt.data.images import natural_key

    return natural_key(name)
