"""The typed, bounded inference state of one video: frame source, object registry, memory groups.

A :class:`Session` holds no tensors that grow with the video: one :class:`~tamvt.memory.MemoryBank`
per :class:`ObjectGroup` (capacity N), the encoded frames of each group's unfinished clip
(at most L-1 of them), and the per-frame results still waiting for another group's clip
(at most L-1 frames). The compute lives in :class:`tamvt.inference.predictor.Predictor`; this module is
bookkeeping only, so every rule about groups and object ids can be read in one place:

* objects annotated in the same frame form one group and share one memory (batched as B);
* an object first given in a later frame starts its own group, whose clips start at the frame after
  its reference frame (SPEC §2);
* removing an object drops its slot from its group's memory; the last object drops the group.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from torch import Tensor

from tamvt.errors import SessionError
from tamvt.inference.source import VideoSource
from tamvt.memory import MemoryBank
from tamvt.models.tamvt import FrameFeatures


def binary_mask(mask: np.ndarray | Tensor, size: tuple[int, int], what: str) -> np.ndarray:
    """``mask (H, W)`` (bool, integer > 0, or float > 0.5) -> bool ``(H, W)``; checks size and emptiness."""
    m = mask.detach().cpu().numpy() if isinstance(mask, Tensor) else np.asarray(mask)
    if m.ndim != 2:
        raise SessionError(f"{what}: mask must be 2-D (H, W), got shape {m.shape}")
    if m.shape != tuple(size):
        raise SessionError(f"{what}: mask size {m.shape[1]}x{m.shape[0]} != frame size {size[1]}x{size[0]}")
    m = m > 0.5 if np.issubdtype(m.dtype, np.floating) else m > 0
    if not m.any():
        raise SessionError(f"{what}: mask is empty")
    return m


@dataclass(eq=False)
class ObjectGroup:
    """Objects given in the same frame: one memory bank, objects batched in B (slot order = ``object_ids``).

    Attributes:
        key: session-unique number (frames record which groups they still wait for).
        ref_frame: the frame where the masks were given; clips start at ``ref_frame + 1``.
        object_ids: user ids in slot order.
        ref_masks: the given masks, bool ``(H, W)`` at the original size, kept until the reference
            entry is encoded (then emptied).
        bank: the memory, created when the reference frame is processed.
        pending: ``(frame index, encoded frame (T=1))`` of the clip being filled (< L entries).
    """

    key: int
    ref_frame: int
    object_ids: list[int]
    ref_masks: list[np.ndarray]
    bank: MemoryBank | None = None
    pending: list[tuple[int, FrameFeatures]] = field(default_factory=list)

    @property
    def encoded(self) -> bool:
        return self.bank is not None

    def start(self, bank: MemoryBank) -> None:
        """The reference frame is encoded: keep its memory ``bank`` and drop the given masks."""
        self.bank = bank
        self.ref_masks = []


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


class Session:
    """Inference state of one video (create it with :meth:`tamvt.inference.predictor.Predictor.start`).

    Args:
        source: lazily readable frames, or ``None`` for a live stream (:meth:`Predictor.step`).
        size: original frame size ``(H, W)``.
        input_size: network input size ``(h, w)`` after the resize rule.
        capacity: memory capacity N of every group.
        num_frames: video length when known (lets the last clip skip its useless memory update).
    """

    def __init__(self, source: VideoSource | None, size: tuple[int, int], input_size: tuple[int, int],
                 capacity: int, num_frames: int | None = None) -> None:
        self.source = source
        self.size = size
        self.input_size = input_size
        self.capacity = capacity
        self.num_frames = num_frames
        self.groups: list[ObjectGroup] = []
        self.next_frame: int | None = None  # the next frame to process; None before the first one
        self.pending_frames: dict[int, PendingFrame] = {}  # in frame order
        self._next_key = 0

    @property
    def frame_names(self) -> tuple[str, ...] | None:
        return getattr(self.source, "frame_names", None)

    @property
    def objects(self) -> dict[int, int]:
        """Registered object id -> its reference frame."""
        return {obj: g.ref_frame for g in self.groups for obj in g.object_ids}

    def first_reference(self) -> int | None:
        """The earliest reference frame of the groups not processed yet (None if none)."""
        refs = [g.ref_frame for g in self.groups if not g.encoded]
        return min(refs) if refs else None

    # ---- object registry -----------------------------------------------------------------------

    def add_object(self, frame_idx: int, obj_id: int, mask: np.ndarray | Tensor) -> None:
        """Register object ``obj_id`` (1..255) with its ``mask (H, W)`` given in frame ``frame_idx``."""
        if isinstance(obj_id, bool) or not isinstance(obj_id, (int, np.integer)) or not 1 <= obj_id <= 255:
            raise SessionError(f"object id must be an int in 1..255 (index-PNG ids), got {obj_id!r}")
        obj_id = int(obj_id)
        if obj_id in self.objects:
            raise SessionError(f"object {obj_id} is already registered (remove_object it first)")
        if frame_idx < 0 or (self.num_frames is not None and frame_idx >= self.num_frames):
            raise SessionError(f"frame {frame_idx} out of range: the video has {self.num_frames} frames")
        if self.next_frame is not None and frame_idx < self.next_frame:
            raise SessionError(f"frame {frame_idx} was already processed (next frame: {self.next_frame}); "
                               "masks can only be given for frames not processed yet")
        m = binary_mask(mask, self.size, f"object {obj_id} in frame {frame_idx}")
        group = next((g for g in self.groups if g.ref_frame == frame_idx and not g.encoded), None)
        if group is None:
            group = ObjectGroup(self._next_key, frame_idx, [], [])
            self._next_key += 1
            self.groups.append(group)
            self.groups.sort(key=lambda g: g.ref_frame)
        group.object_ids.append(obj_id)
        group.ref_masks.append(m)

    def remove_object(self, obj_id: int) -> None:
        """Forget ``obj_id``: its memory slot, its pending outputs; a group left empty is dropped."""
        group = next((g for g in self.groups if obj_id in g.object_ids), None)
        if group is None:
            raise SessionError(f"unknown object id {obj_id} (registered: {sorted(self.objects)})")
        slot = group.object_ids.index(obj_id)
        group.object_ids.pop(slot)
        for rec in self.pending_frames.values():
            rec.probs.pop(obj_id, None)
        if not group.encoded:
            group.ref_masks.pop(slot)
        elif group.object_ids:
            group.bank.drop_slot(slot)
        if not group.object_ids:
            self.groups.remove(group)
            for rec in self.pending_frames.values():
                rec.waiting.discard(group.key)

    # ---- frame bookkeeping ---------------------------------------------------------------------

    def starting_groups(self, frame_idx: int) -> list[ObjectGroup]:
        """Groups whose reference frame is ``frame_idx`` (to be encoded now)."""
        return [g for g in self.groups if g.ref_frame == frame_idx and not g.encoded]

    def running_groups(self, frame_idx: int) -> list[ObjectGroup]:
        """Groups that segment frame ``frame_idx`` (reference strictly before it)."""
        return [g for g in self.groups if g.encoded and g.ref_frame < frame_idx]

    def open_frame(self, frame_idx: int, image: np.ndarray, running: Sequence[ObjectGroup]) -> PendingFrame:
        """Start frame ``frame_idx`` (the next one): a pending record that waits for the ``running``
        groups' clips."""
        rec = PendingFrame(frame_idx, image, {}, {g.key for g in running})
        self.pending_frames[frame_idx] = rec
        self.next_frame = frame_idx + 1
        return rec

    def pop_ready(self) -> list[PendingFrame]:
        """Frames, in order, whose every group has delivered; stops at the first incomplete one."""
        out = []
        while self.pending_frames:
            index = next(iter(self.pending_frames))
            if self.pending_frames[index].waiting:
                break
            out.append(self.pending_frames.pop(index))
        return out
