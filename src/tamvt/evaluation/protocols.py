"""Which frames and which objects each benchmark protocol scores.

All protocols score annotated frames only (a prediction is read for a frame only when the
ground truth has a mask for it). Per protocol:

========  ===========================================================  ===========================
protocol  evaluated frames (indices into the sequence's frames)         objects
========  ===========================================================  ===========================
davis     annotated frames without the first and the last              1..max id of the first
                                                                        annotated frame
vost      same as davis (VOST annotates every 6th frame; J_tr is J     same as davis
          over the last N - floor(0.75 N) evaluated frames)
visor     annotated frames without the first; the last one is kept     same as davis
youtube   per object: the annotated frames after its first appearance  the sequence's object ids
                                                                        (may be non-contiguous)
generic   annotated frames without the first annotated one             the sequence's object ids
========  ===========================================================  ===========================

Ids 1..max of DAVIS include ids absent from the first frame (their ground truth is empty), as
in the official toolkit. The void id (255) is background everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from tamvt.data.sequence import VideoSequence

PROTOCOLS: tuple[str, ...] = ("davis", "vost", "visor", "youtube", "generic")


@dataclass(frozen=True)
class EvalPlan:
    """What to score in one sequence.

    Attributes:
        objects: object ids scored, in report order.
        frames: object id -> evaluated frame indices, increasing.
    """

    objects: tuple[int, ...]
    frames: Mapping[int, tuple[int, ...]]

    @property
    def all_frames(self) -> tuple[int, ...]:
        """Every frame some object is scored in, increasing (each is decoded once)."""
        return tuple(sorted({f for fr in self.frames.values() for f in fr}))


def check_protocol(protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")


def _common_frames(protocol: str, annotated: tuple[int, ...]) -> tuple[int, ...]:
    if protocol in ("davis", "vost"):
        return annotated[1:-1]
    return annotated[1:]  # visor, generic


def frames_needed(protocol: str, seq: VideoSequence) -> tuple[int, ...]:
    """Frames whose prediction will be read, known without decoding any mask (for early checks)."""
    check_protocol(protocol)
    annotated = seq.annotated
    if protocol == "youtube":
        if not seq.objects:
            return ()
        start = min(seq.objects.values())
        return tuple(a for a in annotated if a > start)
    return _common_frames(protocol, annotated)


def to_labels(mask: np.ndarray, void_id: int | None) -> np.ndarray:
    """Ground-truth ids ``(H, W)`` uint8 with the void id mapped to background 0 (copy if changed)."""
    if void_id is not None and void_id != 0:
        void = mask == void_id
        if void.any():
            mask = mask.copy()
            mask[void] = 0
    return mask


def make_plan(protocol: str, seq: VideoSequence, first_labels: np.ndarray) -> EvalPlan:
    """The plan for ``seq``; ``first_labels (H, W)`` are the ids of its first annotated frame (void -> 0)."""
    check_protocol(protocol)
    annotated = seq.annotated
    if protocol == "youtube":
        objects = tuple(sorted(k for k in seq.objects if k != 0))
        frames = {k: tuple(a for a in annotated if a > seq.objects[k]) for k in objects}
        return EvalPlan(objects, frames)
    common = _common_frames(protocol, annotated)
    if protocol == "generic":
        objects = tuple(sorted(k for k in seq.objects if k not in (0, seq.void_id)))
    else:
        objects = tuple(range(1, int(first_labels.max(initial=0)) + 1))
    return EvalPlan(objects, {k: common for k in objects})
