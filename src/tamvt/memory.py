"""Clip-based memory (SPEC §2): a bounded memory bank and the single clip step used by the online
predictor and by the trainer's unroll."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from tamvt.models.matching import rte_rows
from tamvt.models.tamvt import FrameFeatures, MemoryEntry, TamVT


class MemoryBank:
    """Memory of one group of objects that share their memory frames (usually: all objects of a video
    annotated in the same frame).

    Order is ``[reference, (correction), oldest, ..., newest]``. The reference (the first entry added)
    is never evicted; when the bank is full, adding an entry first evicts the oldest entry that is not
    a reference (FIFO), so at most ``capacity`` entries are held. With ``capacity == 1`` only the
    reference is kept and later entries are discarded.

    Corrections (:meth:`add` with ``reference=True`` on a bank that has its first reference): a frame
    whose mask a user gave after the first one is a second permanent entry, placed right after the
    first reference, so its relative-time slot is "older than every recent entry, newer than the
    first reference". A later correction *replaces* the previous one rather than adding a third
    permanent entry: the model was trained with one reference and N-1 recent entries, every extra
    permanent entry takes a recent slot away, and the latest correction is the user's freshest word
    on the object's appearance. So at most two entries are permanent.

    Args:
        capacity: N (the model's RTE table must cover it).
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"memory capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._entries: list[MemoryEntry] = []
        self._next_id = 0
        self._fixed = 0  # leading entries that are never evicted: the reference (+ the latest correction)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def entries(self) -> tuple[MemoryEntry, ...]:
        """Entries in memory order ``[reference, (correction), oldest, ..., newest]``."""
        return tuple(self._entries)

    @property
    def entry_ids(self) -> list[int]:
        """Insertion numbers of the held entries (0 = reference, k = k-th entry added after it)."""
        return [e.entry_id for e in self._entries]

    @property
    def num_references(self) -> int:
        """Permanent entries at the front: 1 (the reference) or 2 (+ the latest correction); 0 if empty."""
        return self._fixed

    def rte_rows(self) -> list[int]:
        """Rows of the RTE table used by the held entries, in memory order (SPEC §1.5)."""
        return rte_rows(len(self._entries))

    def add(self, entry: MemoryEntry, reference: bool = False) -> MemoryEntry | None:
        """Append ``entry`` (newest), or with ``reference=True`` keep it as a permanent entry (the first
        reference, or a correction that replaces the previous one); returns the entry that left the
        bank, if any."""
        if self._entries and entry.num_objects != self._entries[0].num_objects:
            raise ValueError(f"entry has {entry.num_objects} objects, the bank {self._entries[0].num_objects}")
        entry.entry_id = self._next_id
        self._next_id += 1
        if not self._entries:
            self._entries.append(entry)
            self._fixed = 1
            return None
        if self.capacity == 1:
            return entry
        if reference:
            if self._fixed == 2:
                replaced, self._entries[1] = self._entries[1], entry
                return replaced
            self._entries.insert(1, entry)
            self._fixed = 2
            return self._entries.pop(2) if len(self._entries) > self.capacity else None
        if len(self._entries) < self.capacity:
            self._entries.append(entry)
            return None
        if self._fixed >= self.capacity:  # only permanent entries fit: the new one is not kept
            return entry
        evicted = self._entries.pop(self._fixed)
        self._entries.append(entry)
        return evicted

    def clear(self) -> None:
        self._entries.clear()
        self._next_id = 0
        self._fixed = 0

    def drop_slot(self, slot: int) -> None:
        """Forget the object in batch slot ``slot`` in every entry (keys do not depend on the objects)."""
        for entry in self._entries:
            keep = torch.tensor([i for i in range(entry.num_objects) if i != slot])
            entry.values = tuple(v[keep.to(v.device)] for v in entry.values)


def seed_bank(model: TamVT, frames: FrameFeatures, masks: Tensor, capacity: int, *,
              references: bool = False) -> MemoryBank:
    """A new bank of ``capacity`` holding the ``T`` given frames as entries, in order (the first is the
    reference): frame ``t`` of ``frames`` with ``masks[:, t]``.

    Args:
        frames: ``T`` encoded frames (:meth:`TamVT.encode_frames`).
        masks: ``(B, T, H, W)`` masks of the ``B`` objects in those frames, values in [0, 1].
        references: keep every entry permanently (the predictor's references: the first mask and a
            correction, ``T <= 2``); False: the entries after the first are ordinary FIFO entries (the
            trainer's ground-truth memory frames).
    """
    bank = MemoryBank(capacity)
    dtype = frames.match_in[0].dtype
    for t in range(frames.num_frames):
        bank.add(model.encode_memory(frames.select(t), masks[:, t : t + 1].to(dtype)), reference=references)
    return bank


@dataclass
class ClipOutput:
    """Result of one clip step.

    Attributes:
        logits: per decoder layer ``(B, T, H/4, W/4)``; ``logits[-1]`` is the prediction, the others
            are the auxiliary outputs for the loss.
        memory_mask: ``(B, 1, H, W)`` soft mask of the clip's last frame (detached), the one written to
            memory: ``sigmoid(bilinear(logits[-1][:, -1], (H, W), align_corners=False))``.
    """

    logits: list[Tensor]
    memory_mask: Tensor

    @property
    def pred_logits(self) -> Tensor:
        """``(B, T, H/4, W/4)`` final-layer logits."""
        return self.logits[-1]


def step_clip(model: TamVT, bank: MemoryBank, frames: FrameFeatures, *, update_memory: bool = True) -> ClipOutput:
    """Segment one clip against the bank, then append its last frame + soft prediction to the bank.

    Works with or without gradients (the trainer calls it with grad enabled; the memory mask is
    always detached, as in the authors' training).

    Args:
        model: the network.
        bank: memory of the ``B`` objects (at least the reference entry).
        frames: the clip's ``T`` encoded frames (:meth:`TamVT.encode_frames`).
        update_memory: append the last frame to ``bank`` (False: leave the bank untouched).
    """
    z = model.match(frames, bank.entries)
    logits = model.decode(frames, z)
    last = logits[-1][:, -1:].detach()  # (B, 1, H/4, W/4)
    # interpolate logits first, then sigmoid (authors' order)
    mask = torch.sigmoid(F.interpolate(last.float(), size=frames.image_size, mode="bilinear", align_corners=False))
    if update_memory:
        bank.add(model.encode_memory(frames.select(-1), mask))
    return ClipOutput(logits=logits, memory_mask=mask)
