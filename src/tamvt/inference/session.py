"""The typed, bounded inference state of one video: frame source, annotations, results, the current walk.

A :class:`Session` keeps what the user gave and what the model produced:

* **annotations** — every mask given, per object and frame (the first one of an object must not be
  empty; later ones are *corrections* and may be empty: "not visible here");
* **results** — the merged index mask of every frame a walk has produced, zlib-compressed
  (:class:`ResultStore`; no probability maps are kept, so a 10,000-frame video holds 10,000 small
  byte strings: about 1-5 KB each for typical masks at 480p);
* the current **walk** (:class:`Walk`) — one pass over the frames in one direction from a start
  frame, with its memory groups. A walk holds no tensors that grow with the video: one
  :class:`~tamvt.memory.MemoryBank` per :class:`ObjectGroup` (capacity N), the encoded frames of
  each group's unfinished clip (at most L-1), and the per-frame results still waiting for another
  group's clip (at most L-1 frames).

The compute lives in :class:`tamvt.inference.predictor.Predictor`; this module is bookkeeping only,
so every rule about groups and object ids can be read in one place:

* objects with the same annotated frames form one group and share one memory (batched as B): the
  usual case is every object given in one frame; an object first given later, or corrected in a
  frame where the others are not, has its own group (so no group ever has to split mid-walk);
* a group starts at the walk's start frame when it has annotations at or before it (in walk order),
  otherwise at its first annotation met by the walk;
* every annotated frame of a group is a permanent memory entry (a *reference*), bounded: the clip
  that starts at frame ``t`` reads the ``max_references`` annotated frames nearest in time to ``t``,
  before or after it, with their RTE rows by rank (:func:`nearest_references`);
* an annotated frame met by the walk is a correction: the group outputs the given masks there, and
  its clips restart after it;
* removing an annotation drops that frame from the object's references (the next walk is planned
  without it); removing an object drops its slot from its group's memory; the last object drops the
  group.
"""

from __future__ import annotations

import zlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from tamvt.errors import SessionError
from tamvt.inference.source import VideoSource
from tamvt.memory import MemoryBank
from tamvt.models.tamvt import FrameFeatures


def nearest_references(annotated: Sequence[int], t: int, step: int, limit: int) -> tuple[int, ...]:
    """The annotated frames whose masks are in memory when a clip starting at frame ``t`` is segmented,
    in memory order (SAM 2's rule for its prompted frames, with tamvt's rank RTE).

    The rule: the ``limit`` frames of ``annotated`` nearest in time to ``t`` (``|f - t|``), before or
    after it; of two at the same distance the one already passed by the walk (``step`` = +1 forward, -1
    backward) counts as nearer. Ranked by distance ``d1 <= d2 <= d3 ...``, their memory order (before
    the recent frames) is ``[2nd nearest, nearest, 3rd, 4th, ...]``, and their RTE rows go by that rank:
    with ``n`` entries held, the 2nd nearest takes offset ``n-1`` of the RTE block (the row the paper's
    single reference has), the nearest ``n-2``, the 3rd ``n-3``, ..., the recent frames the rows below.
    With one annotated frame this is the paper's memory exactly; with two it is the order the engine
    used before (the first mask, then a correction nearer to ``t``), the one the trained models handle.
    Measured with the shipped model, the two simpler orders fail: the nearest in the reference's row lost
    a corrected object the frame after its correction (tests/test_app_http.py, frame 31: 0 % of the box
    against 97 %), and the nearest last (next to the recent frames) lost a whole shot after its
    correction (tests/test_corrections.py: J 0.00 against 0.93).

    >>> nearest_references([0, 10, 20, 30], 12, 1, 2)
    (20, 10)
    >>> nearest_references([0, 10, 20, 30], 15, 1, 3)   # 10 and 20 tie: 10 is behind a forward walk
    (20, 10, 0)
    >>> nearest_references([0, 10, 20, 30], 15, -1, 3)  # 20 is behind a backward walk
    (10, 20, 30)
    """
    chosen = sorted(annotated, key=lambda f: (abs(f - t), (f - t) * step > 0))[:limit]
    return tuple(chosen[1:2] + chosen[:1] + chosen[2:])


def binary_mask(mask: np.ndarray | Tensor, size: tuple[int, int], what: str, allow_empty: bool = False) -> np.ndarray:
    """``mask (H, W)`` (bool, integer > 0, or float > 0.5) -> bool ``(H, W)``; checks size and emptiness."""
    m = mask.detach().cpu().numpy() if isinstance(mask, Tensor) else np.asarray(mask)
    if m.ndim != 2:
        raise SessionError(f"{what}: mask must be 2-D (H, W), got shape {m.shape}")
    if m.shape != tuple(size):
        raise SessionError(f"{what}: mask size {m.shape[1]}x{m.shape[0]} != frame size {size[1]}x{size[0]}")
    m = m > 0.5 if np.issubdtype(m.dtype, np.floating) else m > 0
    if not allow_empty and not m.any():
        raise SessionError(f"{what}: mask is empty")
    return m


class ResultStore:
    """Merged index masks ``(H, W)`` uint8 per frame, each zlib-compressed (level 1) in memory."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = size
        self._data: dict[int, bytes] = {}

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, frame_idx: int) -> bool:
        return frame_idx in self._data

    def put(self, frame_idx: int, mask: np.ndarray) -> None:
        self._data[frame_idx] = zlib.compress(np.ascontiguousarray(mask, dtype=np.uint8).tobytes(), 1)

    def get(self, frame_idx: int) -> np.ndarray | None:
        data = self._data.get(frame_idx)
        if data is None:
            return None
        return np.frombuffer(zlib.decompress(data), dtype=np.uint8).reshape(self.size).copy()

    def frames(self) -> list[int]:
        return sorted(self._data)

    def nbytes(self) -> int:
        """Bytes held by the compressed masks."""
        return sum(len(v) for v in self._data.values())

    def clear(self) -> None:
        self._data.clear()


# ObjectGroup's tensors with one row per object (dropped with the object)
PER_OBJECT_STATE = (
    "last_masks",
    "seen_area",
    "given_area",
    "peak_area",
    "lost",
    "looks",
    "unlike_run",
    "stale_cells",
    "stale_kept",
)


@dataclass(eq=False)
class ObjectGroup:
    """Objects that share one memory bank in a walk, batched in B (slot order = ``object_ids``).

    Attributes:
        key: walk-unique number (frames record which groups they still wait for).
        object_ids: user ids in slot order.
        annotated: the frames where these objects were given (the same for all of them), ascending.
        start_frame: the frame where the group's memory is seeded.
        references: the annotated frames at or before ``start_frame`` in walk order (the last one may be
            ``start_frame`` itself), or ``(start_frame,)``; the memory holds the annotated frames nearest
            to each clip (:func:`nearest_references`), these and the ones ahead alike.
        bank: the memory, created when ``start_frame`` is processed.
        pending: ``(frame index, encoded frame (T=1))`` of the clip being filled (< L entries).
        last_masks: ``(B, h, w)`` bool, the objects' newest masks at the input size (given or predicted),
            kept for local search (``inference.search_window``); None when it is off.
        seen_area: ``(B,)`` each object's mask area (a fraction of the frame) when it was last present
            (given, or present by the presence rule; with ``presence_edge_hold``, present and off the
            frame's border), for the rule (``inference.presence``); None when it is off.
        given_area: ``(B,)`` each object's area in the latest given mask met (start or correction; an
            empty correction keeps the one before), for the rule's upper bound; None when it is off.
        peak_area: ``(B,)`` each object's largest area since that given mask (given, or present by the
            rule), for the rule's ``presence_peak_area``; None when the rule is off.
        lost: ``(B,)`` bool, each object absent from the newest frame segmented (or given empty), for the
            rule's ``presence_redetect``; None when the rule is off.
        looks: ``(B, K, 2, C)``, each object's looks, each with the centre it is measured from
            (:func:`tamvt.memory.object_look`), for the rule's ``presence_likeness`` and ``presence_find``:
            first the look in the latest given mask met (an empty correction keeps the one before), then
            (``K = 2``, with ``presence_likeness_recent``, once a frame is written) the look in the newest
            frame written to memory while it was present there; None when both are off.
        unlike_run: ``(B,)`` the frames in a row each object's mask was unlike it (the rule's
            ``presence_likeness_frames``, :func:`tamvt.memory.unlike_runs`); None until counted.
        stale_cells: ``(B, h, w)`` bool, the stride-8 cells like each object in the frame where it was
            lost, and ``stale_kept``: ``(B,)`` bool, whether it has that record (the rule's
            ``presence_find``, :attr:`tamvt.memory.ClipOutput.stale`); None until recorded.
    """

    key: int
    object_ids: list[int]
    annotated: tuple[int, ...]
    start_frame: int
    references: tuple[int, ...]
    bank: MemoryBank | None = None
    pending: list[tuple[int, FrameFeatures]] = field(default_factory=list)
    last_masks: Tensor | None = None
    seen_area: Tensor | None = None
    given_area: Tensor | None = None
    peak_area: Tensor | None = None
    lost: Tensor | None = None
    looks: Tensor | None = None
    unlike_run: Tensor | None = None
    stale_cells: Tensor | None = None
    stale_kept: Tensor | None = None

    @property
    def encoded(self) -> bool:
        return self.bank is not None

    @property
    def memory(self) -> MemoryBank:
        """The group's bank (an error before ``start_frame`` is processed)."""
        if self.bank is None:
            raise SessionError(
                f"group of objects {self.object_ids} has no memory yet (it starts at frame {self.start_frame})"
            )
        return self.bank

    def given_at(self, frame_idx: int) -> bool:
        """Whether the group's masks were given in ``frame_idx`` (its output there is the given masks)."""
        return frame_idx in self.annotated


@dataclass(frozen=True)
class ClipRecord:
    """One clip a group segmented, for diagnostics (``on_clip`` of :meth:`Predictor.start`).

    Attributes:
        object_ids: the group's objects, in slot order.
        frames: the clip's frame indices, in walk order.
        memory: the frame of every memory entry the clip was matched against, memory order
            ``[references, oldest, ..., newest]``.
        written: whether the clip's last frame joined the memory (the bank changed).
        present: per object (slot order), per clip frame: whether the presence rule found it there
            (``inference.presence``); ``None`` when the rule is off.
    """

    object_ids: tuple[int, ...]
    frames: tuple[int, ...]
    memory: tuple[int, ...]
    written: bool
    present: tuple[tuple[bool, ...], ...] | None = None


@dataclass(eq=False)
class PendingFrame:
    """A frame whose result is not complete yet.

    Attributes:
        index: frame index; image: the input frame ``(H, W, 3)`` uint8;
        probs: object id -> ``(H, W)`` float32 probability at the original size (CPU);
        waiting: keys of the groups that still have to decode this frame.
    """

    index: int
    image: np.ndarray
    probs: dict[int, Tensor]
    waiting: set[int]


class Walk:
    """One pass over the frames from ``start`` in one direction (``step`` = +1 or -1).

    Args:
        start: first frame; step: +1 forward, -1 backward; last: the final frame of the pass (None:
            unknown, a live stream); version: the session's annotation version it was planned for.
    """

    def __init__(self, start: int, step: int, last: int | None, version: int) -> None:
        self.start, self.step, self.last, self.version = start, step, last, version
        self.groups: list[ObjectGroup] = []
        self.next_frame: int = start  # the next frame to process
        self.pending_frames: dict[int, PendingFrame] = {}  # in walk order
        self.outbox: deque = deque()  # complete results not yet handed to the caller (< L)
        self.finished = False
        self._next_key = 0

    def before(self, a: int, b: int) -> bool:
        """``a`` comes strictly before ``b`` in this walk."""
        return a * self.step < b * self.step

    def add_group(self, object_ids: list[int], annotated: Sequence[int]) -> ObjectGroup:
        """A group for objects given in ``annotated`` frames: seeded at the start frame if some of them
        lie at or before it in walk order, else at the first one the walk meets."""
        order = sorted(annotated, key=lambda f: f * self.step)
        behind = [f for f in order if not self.before(self.start, f)]  # at or before the start
        if behind:
            start_frame = self.start
            references = tuple(behind)
        else:
            start_frame = order[0]
            references = (start_frame,)
        group = ObjectGroup(self._next_key, list(object_ids), tuple(sorted(annotated)), start_frame, references)
        self._next_key += 1
        self.groups.append(group)
        return group

    def starting_groups(self, frame_idx: int) -> list[ObjectGroup]:
        """Groups whose memory is seeded at ``frame_idx``."""
        return [g for g in self.groups if g.start_frame == frame_idx and not g.encoded]

    def segmenting_groups(self, frame_idx: int) -> list[ObjectGroup]:
        """Groups whose output at ``frame_idx`` comes from the model (seeded, not given there)."""
        return [
            g
            for g in self.groups
            if (g.encoded or g.start_frame == frame_idx)
            and not g.given_at(frame_idx)
            and not self.before(frame_idx, g.start_frame)
        ]

    def open_frame(self, frame_idx: int, image: np.ndarray, waiting: Sequence[ObjectGroup]) -> PendingFrame:
        """Start frame ``frame_idx`` (the next one): a pending record that waits for the ``waiting``
        groups' clips."""
        rec = PendingFrame(frame_idx, image, {}, {g.key for g in waiting})
        self.pending_frames[frame_idx] = rec
        self.next_frame = frame_idx + self.step
        return rec

    def pop_ready(self) -> list[PendingFrame]:
        """Frames, in walk order, whose every group has delivered; stops at the first incomplete one."""
        out = []
        while self.pending_frames:
            index = next(iter(self.pending_frames))
            if self.pending_frames[index].waiting:
                break
            out.append(self.pending_frames.pop(index))
        return out

    def remove_object(self, obj_id: int) -> None:
        """Drop ``obj_id`` from its group (its memory slot, its pending outputs); an empty group goes."""
        group = next((g for g in self.groups if obj_id in g.object_ids), None)
        if group is None:
            return
        slot = group.object_ids.index(obj_id)
        group.object_ids.pop(slot)
        for rec in self.pending_frames.values():
            rec.probs.pop(obj_id, None)
        if group.bank is not None and group.object_ids:
            group.bank.drop_slot(slot)
        for name in PER_OBJECT_STATE:  # the per-object tensors of local search and the presence rule
            held = getattr(group, name)
            if held is not None:
                setattr(group, name, torch.cat([held[:slot], held[slot + 1 :]]))
        if not group.object_ids:
            self.groups.remove(group)
            for rec in self.pending_frames.values():
                rec.waiting.discard(group.key)


class Session:
    """Inference state of one video (create it with :meth:`tamvt.inference.predictor.Predictor.start`).

    Args:
        source: lazily readable frames, or ``None`` for a live stream
            (:class:`~tamvt.inference.predictor.LiveStream`).
        size: original frame size ``(H, W)``.
        input_size: network input size ``(h, w)`` after the resize rule.
        capacity: memory capacity N of every group.
        num_frames: video length when known (lets the last clip skip its useless memory update).
        keep_results: store every produced frame's merged mask (:meth:`result`); False for callers that
            consume the results as they come (``tamvt segment``).
        on_clip: called with a :class:`ClipRecord` after every clip a group segments (diagnostics).
        oracle_memory: frame index -> index mask ``(H, W)`` (the original size) whose objects' masks are
            written to memory in place of the predictions (a diagnostic: the model's best case when its
            memory is never wrong); ``None``: the predictions, as always.
    """

    def __init__(
        self,
        source: VideoSource | None,
        size: tuple[int, int],
        input_size: tuple[int, int],
        capacity: int,
        num_frames: int | None = None,
        keep_results: bool = True,
        *,
        on_clip: Callable[[ClipRecord], None] | None = None,
        oracle_memory: Callable[[int], np.ndarray] | None = None,
    ) -> None:
        self.source = source
        self.size = size
        self.input_size = input_size
        self.capacity = capacity
        self.num_frames = num_frames
        self.keep_results = keep_results
        self.on_clip = on_clip
        self.oracle_memory = oracle_memory
        self.annotations: dict[int, dict[int, np.ndarray]] = {}  # object id -> {frame: bool (H, W)}, in order given
        self.results = ResultStore(size)
        self.walk: Walk | None = None
        self.version = 0  # bumped by every annotation: a walk planned for an older version is stale

    @property
    def frame_names(self) -> tuple[str, ...] | None:
        return getattr(self.source, "frame_names", None)

    @property
    def objects(self) -> dict[int, int]:
        """Registered object id -> its first annotated frame."""
        return {obj: min(frames) for obj, frames in self.annotations.items()}

    @property
    def groups(self) -> list[ObjectGroup]:
        """The current walk's groups (empty before the first walk)."""
        return self.walk.groups if self.walk is not None else []

    @property
    def pending_frames(self) -> dict[int, PendingFrame]:
        return self.walk.pending_frames if self.walk is not None else {}

    @property
    def next_frame(self) -> int | None:
        """The next frame the current walk processes (None without a walk)."""
        return self.walk.next_frame if self.walk is not None else None

    def annotated_frames(self) -> list[int]:
        """Frames where some mask was given, ascending."""
        return sorted({f for frames in self.annotations.values() for f in frames})

    def annotation(self, frame_idx: int) -> dict[int, np.ndarray]:
        """Object id -> the mask given in ``frame_idx`` (bool ``(H, W)``)."""
        return {obj: frames[frame_idx] for obj, frames in self.annotations.items() if frame_idx in frames}

    def result(self, frame_idx: int) -> np.ndarray | None:
        """The merged index mask ``(H, W)`` uint8 of ``frame_idx`` from the latest walk that produced it
        (at annotated frames: the given masks), or None."""
        return self.results.get(frame_idx)

    def memory_frames(self) -> dict[int, tuple[int, ...]]:
        """Object id -> the frames its memory holds now, memory order ``[references, oldest,
        ..., newest]`` (:class:`~tamvt.memory.MemoryBank`); objects whose memory is not seeded yet are
        absent. A read-only view: the engine records every entry's frame."""
        out = {}
        for g in self.groups:
            if g.bank is None:
                continue
            frames = tuple(f for f in g.bank.frames if f is not None)
            if len(frames) != len(g.bank):
                raise SessionError(f"memory of objects {g.object_ids} holds entries without a frame index")
            out.update({obj: frames for obj in g.object_ids})
        return out

    def reset(self) -> None:
        """Drop every result and the memory (the current walk); the frames and annotations stay."""
        self.walk = None
        self.results.clear()

    # ---- annotations -----------------------------------------------------------------------------

    def add_object(self, frame_idx: int, obj_id: int, mask: np.ndarray | Tensor) -> bool:
        """Give object ``obj_id`` (1..255) by its ``mask (H, W)`` in frame ``frame_idx``: a new object, or a
        correction of a known one (an empty mask then means "not visible here"). Returns True for a
        correction. A new object whose frames all lie ahead of the running walk joins it; anything else
        makes the walk stale (the next :meth:`Predictor.propagate` plans a new one)."""
        if isinstance(obj_id, bool) or not isinstance(obj_id, (int, np.integer)) or not 1 <= obj_id <= 255:
            raise SessionError(f"object id must be an int in 1..255 (index-PNG ids), got {obj_id!r}")
        obj_id = int(obj_id)
        if frame_idx < 0 or (self.num_frames is not None and frame_idx >= self.num_frames):
            raise SessionError(f"frame {frame_idx} out of range: the video has {self.num_frames} frames")
        correction = obj_id in self.annotations
        m = binary_mask(mask, self.size, f"object {obj_id} in frame {frame_idx}", allow_empty=correction)
        walk = self.walk
        if self.source is None and walk is not None and (correction or frame_idx != walk.next_frame):
            raise SessionError(
                f"a live stream takes masks of new objects in the next frame only "
                f"(frame {walk.next_frame}); corrections need a session over a whole video"
            )
        self.annotations.setdefault(obj_id, {})[frame_idx] = m
        joins = (
            walk is not None and not walk.finished and not correction and not walk.before(frame_idx, walk.next_frame)
        )
        if joins and walk is not None:
            same = next(
                (
                    g
                    for g in walk.groups
                    if not g.encoded and g.annotated == (frame_idx,) and g.start_frame == frame_idx
                ),
                None,
            )
            if same is not None:
                same.object_ids.append(obj_id)
            else:
                walk.add_group([obj_id], (frame_idx,))
        else:
            self.version += 1
        return correction

    def remove_object(self, obj_id: int) -> None:
        """Forget ``obj_id``: its annotations, its memory slot in the running walk and its stored results
        stay as they are (frames already produced keep it until recomputed)."""
        if obj_id not in self.annotations:
            raise SessionError(f"unknown object id {obj_id} (registered: {sorted(self.annotations)})")
        del self.annotations[obj_id]
        if self.walk is not None:
            self.walk.remove_object(obj_id)

    def remove_annotation(self, frame_idx: int, obj_id: int) -> None:
        """Drop the mask given for ``obj_id`` in ``frame_idx``: that frame is no longer one of the object's
        references. The current walk is dropped (the next propagation plans a new one; its memory would
        still hold the frame); stored results stay as they are until recomputed. The object's last
        non-empty mask cannot be removed: remove the object instead."""
        if self.source is None:
            raise SessionError("a live stream's masks cannot be removed")
        frames = self.annotations.get(obj_id)
        if frames is None:
            raise SessionError(f"unknown object id {obj_id} (registered: {sorted(self.annotations)})")
        if frame_idx not in frames:
            raise SessionError(f"object {obj_id} has no mask in frame {frame_idx} (it has: {sorted(frames)})")
        if not any(m.any() for f, m in frames.items() if f != frame_idx):
            raise SessionError(
                f"frame {frame_idx} holds the last non-empty mask of object {obj_id}: remove the object instead"
            )
        del frames[frame_idx]
        self.version += 1
        self.walk = None

    def plan_walk(self, start: int, step: int) -> Walk:
        """A new walk from ``start`` in direction ``step`` with groups of the objects given so far."""
        last = (self.num_frames - 1 if step > 0 else 0) if self.num_frames is not None else None
        walk = Walk(start, step, last, self.version)
        by_frames: dict[tuple[int, ...], list[int]] = {}
        for obj, masks in self.annotations.items():
            by_frames.setdefault(tuple(sorted(masks)), []).append(obj)
        for annotated, ids in by_frames.items():
            walk.add_group(ids, annotated)
        self.walk = walk
        return walk

    def iter_walk_frames(self, walk: Walk) -> Iterator[tuple[int, np.ndarray]]:
        """``(index, frame)`` of the walk's remaining frames, in walk order."""
        from tamvt.inference.source import iter_frames_in_order

        yield from iter_frames_in_order(self.video_source(), walk.next_frame, walk.step)

    def video_source(self) -> VideoSource:
        """The frames of a session over a whole video (an error on a live stream)."""
        if self.source is None:
            raise SessionError("a streaming session has no video to read frames from")
        return self.source
