"""Re-found: after an object vanished from the ground truth (fully occluded or out of the frame), does the
prediction find it again?

A *reappearance* is a frame where the object is present in the ground truth after >= 1 frame of full
absence, having been present before (an object that first appears late is not one; one that leaves and
never comes back is not one either). It is *re-found* when J >= ``threshold`` (0.5) on some frame where
the object is present within ``window`` (10) frames from the reappearance: frames r .. r + window - 1.
Frames count along the annotated frames; frames without a score (the protocol's first and last) are
skipped, and a reappearance with no scored present frame in its window is not counted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tamvt.data.sequence import VideoSequence
from tamvt.evaluation.evaluate import EvalResult
from tamvt.evaluation.protocols import to_labels

REFOUND_WINDOW = 10
REFOUND_J = 0.5


@dataclass(frozen=True)
class Reappearance:
    """One reappearance: ``frame`` (index into the arrays given), ``absent`` frames before it, ``found``,
    and ``delay``: frames from ``frame`` to the first one with J >= threshold (None when not found)."""

    frame: int
    absent: int
    found: bool
    delay: int | None


def reappearances(present: np.ndarray) -> list[tuple[int, int]]:
    """``[(frame, absent frames before it), ...]`` for a per-frame presence ``present (T,)`` bool."""
    present = np.asarray(present, dtype=bool)
    out: list[tuple[int, int]] = []
    seen, gap = False, 0
    for t, p in enumerate(present.tolist()):
        if p:
            if seen and gap:
                out.append((t, gap))
            seen, gap = True, 0
        elif seen:
            gap += 1
    return out


def refound_events(
    j: np.ndarray, present: np.ndarray, window: int = REFOUND_WINDOW, threshold: float = REFOUND_J
) -> list[Reappearance]:
    """Every counted reappearance of one object from per-frame ``j (T,)`` (NaN: not scored) and ``present
    (T,)`` (ground truth has >= 1 pixel of the object)."""
    j = np.asarray(j, dtype=np.float64)
    present = np.asarray(present, dtype=bool)
    if j.shape != present.shape:
        raise ValueError(f"j {j.shape} and present {present.shape} differ in shape")
    events = []
    for r, gap in reappearances(present):
        span = range(r, min(r + window, len(j)))
        scored = [t for t in span if present[t] and not np.isnan(j[t])]
        if not scored:
            continue
        hits = [t for t in scored if j[t] >= threshold]
        events.append(Reappearance(r, gap, bool(hits), hits[0] - r if hits else None))
    return events


def refound_rate(events: Sequence[Reappearance]) -> float:
    """Share of ``events`` re-found; NaN when there is none."""
    return sum(e.found for e in events) / len(events) if events else float("nan")


Presence = tuple[tuple[str, ...], dict[int, np.ndarray]]  # annotated frame names, object -> (T,) bool


def sequence_presence(seq: VideoSequence) -> Presence:
    """The annotated frames' names and, per object id of ``seq``, whether its ground truth has a pixel
    of the object on each of them (the void id counts as background)."""
    names = tuple(seq.frame_names[a] for a in seq.annotated)
    present = {k: np.zeros(len(names), dtype=bool) for k in seq.objects}
    for i, a in enumerate(seq.annotated):
        counts = np.bincount(to_labels(seq.read_mask(a), seq.void_id).ravel(), minlength=256)
        for k in present:
            present[k][i] = counts[k] > 0 if k < 256 else False
    return names, present


def result_refound(
    result: EvalResult,
    presence: Mapping[str, Presence],
    window: int = REFOUND_WINDOW,
    threshold: float = REFOUND_J,
) -> list[list[Reappearance]]:
    """The reappearances of every object of ``result`` (same order as ``result.objects``), from its
    per-frame J and ``presence[sequence]`` (:func:`sequence_presence`)."""
    out: list[list[Reappearance]] = []
    for obj in result.objects:
        names, present = presence[obj.sequence]
        pres = present.get(obj.object)
        if pres is None:  # scored but not annotated anywhere (an id absent from the dataset's objects)
            out.append([])
            continue
        where = {n: i for i, n in enumerate(names)}
        j = np.full(len(names), np.nan)
        for name, value in zip(obj.frames, obj.j.tolist(), strict=True):
            if name in where:
                j[where[name]] = value
        out.append(refound_events(j, pres, window, threshold))
    return out
