"""Clip-based memory (SPEC §2): a bounded memory bank and the single clip step used by the online
predictor and by the trainer's unroll."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from tamvt.models.matching import rte_rows
from tamvt.models.tamvt import FrameFeatures, MemoryEntry, TamVT
from tamvt.refind import FIND_LOGIT, find_lost, grow, look_map

MEMORY_POLICIES = ("fifo", "spread")
SPREAD_RECENT = 2  # spread's default short-term part: best of 1 / 2 / 4 / 6 on benchmarks/accuracy.py (N = 9)


class MemoryBank:
    """Memory of one group of objects that share their memory frames (usually: all objects of a video
    annotated in the same frame).

    Order is ``[permanent entries, oldest, ..., newest]``. The permanent entries (the first entry added,
    and every later one added with ``reference=True`` or given to :meth:`set_references`) are never
    evicted; when the bank is full, adding an entry first evicts one entry that is not permanent,
    chosen by the ``policy``, so at most ``capacity`` entries are held. With ``capacity == 1`` only the
    first permanent entry is kept and later entries are discarded.

    Policies (the eviction choice is the only thing they change; entries stay in time order):

    * ``fifo`` (the paper's, default): evict the oldest entry that is not permanent.
    * ``spread`` (long-term memory, as XMem's long-term store keeps frames from the whole video): the
      ``recent`` newest entries are a FIFO short-term memory; the other non-permanent slots are a
      long-term memory. An entry that leaves the short-term part joins the long-term part, and when
      that is over its size the long-term entry whose two neighbours in time are closest together is
      evicted (the oldest of equals): the kept ones stay evenly spread from the reference to now,
      their spacing growing with the video.

    Relative time encoding of the held entries: the RTE row of an entry is given by its *rank* in
    memory order (:meth:`rte_rows`, SPEC §1.5), whatever the frame distances are, under every policy.
    The RTE encodes order, not frame distance: the reference is already a non-contiguous entry (its
    slot is the oldest, however far back it lies), and a long-term entry of ``spread`` is encoded like
    the reference: by its place between its older and newer neighbours.

    Several permanent entries (the frames a user annotated, :meth:`set_references`): they come first,
    in the order the caller gives (the predictor's: :func:`tamvt.inference.session.nearest_references`),
    so with ``P`` permanent entries of ``n`` held the ``j``-th permanent one (``j = 0..P-1``) gets the
    RTE slot offset ``n-1-j``: the first takes the slot the single reference has in the paper (offset
    ``n-1``), the next one ``n-2``, and so on; the recent entries keep the rows below (the newest:
    offset 0). Each permanent entry takes a slot from the recent part (the model was trained with one
    reference and N-1 recent entries), so the caller bounds how many there are.

    Args:
        capacity: N (the model's RTE table must cover it).
        policy: ``fifo`` or ``spread``.
        recent: ``spread`` only: how many of the newest entries are kept by FIFO (``None``: 2, so 6
            long-term slots for N = 9).
    """

    def __init__(self, capacity: int, policy: str = "fifo", recent: int | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"memory capacity must be >= 1, got {capacity}")
        if policy not in MEMORY_POLICIES:
            raise ValueError(f"unknown memory policy {policy!r}; expected one of {', '.join(MEMORY_POLICIES)}")
        if recent is not None and recent < 1:
            raise ValueError(f"recent must be >= 1, got {recent}")
        self.capacity = capacity
        self.policy = policy
        self.recent = SPREAD_RECENT if recent is None else recent
        self._entries: list[MemoryEntry] = []
        self._frames: list[int | None] = []  # the video frame of each entry, when the caller says it
        self._next_id = 0
        self._fixed = 0  # leading entries that are never evicted: the permanent ones

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def entries(self) -> tuple[MemoryEntry, ...]:
        """Entries in memory order ``[permanent entries, oldest, ..., newest]``."""
        return tuple(self._entries)

    @property
    def entry_ids(self) -> list[int]:
        """Insertion numbers of the held entries (0 = reference, k = k-th entry added after it)."""
        return [e.entry_id for e in self._entries]

    @property
    def frames(self) -> list[int | None]:
        """Video frame index of each held entry, in memory order (``None`` where :meth:`add` was not told)."""
        return list(self._frames)

    @property
    def num_references(self) -> int:
        """How many permanent entries lead the memory order (0 if empty)."""
        return self._fixed

    @property
    def reference_frames(self) -> list[int | None]:
        """Video frames of the permanent entries, in memory order (rank order)."""
        return self._frames[: self._fixed]

    def rte_rows(self) -> list[int]:
        """Rows of the RTE table used by the held entries, in memory order (SPEC §1.5): by rank, under
        every policy (see the class docstring)."""
        return rte_rows(len(self._entries))

    def add(self, entry: MemoryEntry, reference: bool = False, frame: int | None = None) -> MemoryEntry | None:
        """Append ``entry`` (newest), or with ``reference=True`` keep it as a permanent entry, placed after
        the permanent entries held (the first entry added is always permanent); returns the entry that
        left the bank, if any (``entry`` itself when only permanent entries fit). ``frame``: the entry's
        video frame (for :attr:`frames`; ``spread`` measures time with it, or with the insertion number
        when it is not given)."""
        self._check(entry)
        entry.entry_id = self._next_id
        self._next_id += 1
        if not self._entries:
            self._insert(0, entry, frame)
            self._fixed = 1
            return None
        if self._fixed >= self.capacity:  # only permanent entries fit: the new one is not kept
            return entry
        if reference:
            self._insert(self._fixed, entry, frame)
            self._fixed += 1
            return self._pop(self._victim()) if len(self._entries) > self.capacity else None
        self._insert(len(self._entries), entry, frame)
        return self._pop(self._victim()) if len(self._entries) > self.capacity else None

    def set_references(self, entries: Sequence[MemoryEntry], frames: Sequence[int | None]) -> list[MemoryEntry]:
        """Make ``entries`` (of video ``frames``) the permanent entries, in this order (their RTE rows by
        rank: the first one takes the oldest slot); an entry already held keeps its insertion number.
        At most ``capacity`` permanent entries; when the bank is over capacity, entries that are not
        permanent are evicted by the policy. Returns the entries that left the bank."""
        if not 1 <= len(entries) <= self.capacity or len(entries) != len(frames):
            raise ValueError(f"{len(entries)} permanent entries for {len(frames)} frames in a bank of {self.capacity}")
        held, kept = {id(e) for e in self._entries[: self._fixed]}, {id(e) for e in entries}
        left = [e for e in self._entries[: self._fixed] if id(e) not in kept]
        for entry in entries:
            self._check(entry)
            if id(entry) not in held:
                entry.entry_id = self._next_id
                self._next_id += 1
        self._entries[: self._fixed] = list(entries)
        self._frames[: self._fixed] = list(frames)
        self._fixed = len(entries)
        while len(self._entries) > self.capacity:
            left.append(self._pop(self._victim()))
        return left

    def _check(self, entry: MemoryEntry) -> None:
        if self._entries and entry.num_objects != self._entries[0].num_objects:
            raise ValueError(f"entry has {entry.num_objects} objects, the bank {self._entries[0].num_objects}")

    def _victim(self) -> int:
        """Index of the entry to evict from a bank that holds ``capacity + 1`` entries."""
        long_term = range(self._fixed, len(self._entries) - self.recent)
        if self.policy == "fifo" or len(long_term) == 0:
            return self._fixed
        time = [e.entry_id if f is None else f for e, f in zip(self._entries, self._frames, strict=True)]
        # the entry whose neighbours are closest in time leaves the smallest hole (min picks the oldest)
        return min(long_term, key=lambda i: abs(time[i + 1] - time[i - 1]))

    def _insert(self, index: int, entry: MemoryEntry, frame: int | None) -> None:
        self._entries.insert(index, entry)
        self._frames.insert(index, frame)

    def _pop(self, index: int) -> MemoryEntry:
        self._frames.pop(index)
        return self._entries.pop(index)

    def clear(self) -> None:
        self._entries.clear()
        self._frames.clear()
        self._next_id = 0
        self._fixed = 0

    def drop_slot(self, slot: int) -> None:
        """Forget the object in batch slot ``slot`` in every entry (keys do not depend on the objects)."""
        for entry in self._entries:
            keep = torch.tensor([i for i in range(entry.num_objects) if i != slot])
            entry.values = tuple(v[keep.to(v.device)] for v in entry.values)


def seed_bank(
    model: TamVT,
    frames: FrameFeatures,
    masks: Tensor,
    capacity: int,
    *,
    policy: str = "fifo",
    recent: int | None = None,
    frame_indices: Sequence[int] | None = None,
) -> MemoryBank:
    """A new bank of ``capacity`` holding the ``T`` given frames as entries, in order, the first as the
    reference (the trainer's ground-truth memory frames; the predictor sets its annotated frames as
    permanent entries with :meth:`MemoryBank.set_references`): frame ``t`` of ``frames`` with ``masks[:, t]``.

    Args:
        frames: ``T`` encoded frames (:meth:`TamVT.encode_frames`).
        masks: ``(B, T, H, W)`` masks of the ``B`` objects in those frames, values in [0, 1].
        capacity: the new bank's capacity N.
        policy, recent: the new bank's eviction policy (:class:`MemoryBank`).
        frame_indices: the ``T`` video frame indices (recorded in :attr:`MemoryBank.frames`).
    """
    bank = MemoryBank(capacity, policy, recent)
    for t, entry in enumerate(encode_entries(model, frames, masks)):
        bank.add(entry, frame=None if frame_indices is None else frame_indices[t])
    return bank


def encode_entries(model: TamVT, frames: FrameFeatures, masks: Tensor) -> list[MemoryEntry]:
    """One memory entry per frame: frame ``t`` of the ``T`` encoded ``frames`` with ``masks[:, t]``
    (``(B, T, H, W)`` in [0, 1], cast to the features' dtype)."""
    dtype = frames.match_in[0].dtype
    return [model.encode_memory(frames.select(t), masks[:, t : t + 1].to(dtype)) for t in range(frames.num_frames)]


@dataclass
class ClipOutput:
    """Result of one clip step.

    Attributes:
        logits: per decoder layer ``(B, T, H/4, W/4)``; ``logits[-1]`` is the prediction, the others
            are the auxiliary outputs for the loss.
        memory_mask: ``(B, 1, H, W)`` soft mask of the clip's last frame (detached), the one written to
            memory (unless :func:`step_clip` was given an ``oracle_mask``):
            ``sigmoid(bilinear(logits[-1][:, -1], (H, W), align_corners=False))``.
        written: whether the last frame was offered to the bank (``update_memory`` and the confidence gate
            passed; a bank of capacity 1 still keeps only its reference).
        present: ``(B, T)`` bool, whether each object is visible in each frame of the clip by the
            presence rule (:func:`presence`); ``None`` when :func:`step_clip` was given no rule.
        areas: ``(B, T)`` float, each object's mask area (the fraction of the logit map with ``p > 0.5``)
            in each frame, before absent objects were emptied; ``None`` without a presence rule.
        stale: with the rule's ``find_look``, each object's record after the clip: ``(B, h, w)`` bool, the
            cells like it in the frame where it was lost (grown by a cell), and ``(B,)`` bool, whether it
            has one (an object the readout found at the clip's last frame has none; one found there by its
            look keeps it); ``None`` without it.
        unlike_run: ``(B,)`` the frames in a row up to the clip's last each object's mask was unlike it
            (the rule's ``likeness_frames``); ``None`` when that is not counted.
    """

    logits: list[Tensor]
    memory_mask: Tensor
    written: bool = False
    present: Tensor | None = None
    areas: Tensor | None = None
    unlike_run: Tensor | None = None
    stale: tuple[Tensor, Tensor] | None = None

    @property
    def pred_logits(self) -> Tensor:
        """``(B, T, H/4, W/4)`` final-layer logits."""
        return self.logits[-1]


def mask_confidence(mask: Tensor) -> Tensor:
    """``(B,)`` confidence of soft masks ``(B, 1, H, W)``: the mean of ``2p - 1`` over the pixels the
    mask claims (``p > 0.5``), so 1 for a crisp mask, near 0 for a mask that barely passes 0.5, and 0
    for an empty one."""
    p = mask.flatten(1).float()
    fg = p > 0.5
    total = torch.where(fg, 2 * p - 1, torch.zeros_like(p)).sum(1)
    return total / fg.sum(1).clamp(min=1)


def confident(mask: Tensor, min_confidence: float) -> bool:
    """Whether soft masks ``(B, 1, H, W)`` may be written to memory under confidence gating: every
    object's :func:`mask_confidence` reaches ``min_confidence`` (always, when it is 0)."""
    return min_confidence <= 0 or bool((mask_confidence(mask) >= min_confidence).all())


@dataclass(frozen=True)
class PresenceRule:
    """Lost and found: when an object counts as absent from a frame, judged from the model's own output
    (the network has no presence head, so the rule works with any weights).

    An object is *absent* from a frame when its predicted mask (``p > 0.5`` on the logit map) is
    unsure, its :func:`mask_confidence` below ``min_confidence``; or small, its area below ``min_area``
    times its ``expected`` area (the area when it was last seen present; at first, in its reference
    mask); or, with ``min_peak_area``, small against its ``peak`` area (the largest it had since the
    given mask met last: an object that leaves the frame or slides under a cover shrinks a little per
    frame, so that its last-seen area shrinks with it, but not its peak); or, with ``max_area``, too
    large: above ``max_area`` times its ``given`` area (in the given mask met last: a mask that spreads
    over the occluder or the background). An empty mask is always absent.

    Attributes:
        min_confidence: in [0, 1].
        min_area: a fraction of the expected area.
        max_area: a multiple of the given area; ``None``: no upper bound.
        min_peak_area: a fraction of the peak area; ``None``: no such bound.
        redetect: what an object absent from the frame before a clip reads to be found in it:
            ``memory``, the whole memory as every object; ``reference``, the permanent entries alone
            (the frames a user annotated: its look before it was lost, without the recent entries that
            may show where it vanished); ``anywhere``, the larger logit of the usual readout and one of
            the whole memory matched by appearance alone (:meth:`TamVT.match` ``free=True``: the position
            encodings tie the readout to where memory saw the object, so one that comes back elsewhere
            reads as background there).
        reference_check: with a value ``s`` in [0, 1], every clip is also read from the permanent entries
            alone, in the whole frame; an object whose mask over the clip has less than ``s`` of its pixels
            inside that readout's mask of it, while that mask is not empty, takes that readout instead
            (its mask went to something its annotated frames do not show, such as a blob of background
            where it was last seen, and the annotated frames see it elsewhere); ``None``: no such check.
        min_likeness: an object is also absent where its mask does not look like it: the
            :func:`likeness` of the frame's features under the mask to its :func:`object_look` in the
            latest given mask is below this (in [-1, 1]; a mask on an occluder or on the background,
            which the matching took for it because it is where memory saw it); ``None``: no such bound.
        likeness_peak: with ``min_likeness``, that bound counts only where the mask's area is also below
            this fraction of the object's ``peak`` area (in [0, 1]): a mask that does not look like the
            object *and* shrank as it left or slid under a cover (an object that changes over a long
            video keeps its mask while it stays about its size); ``None``: the bound counts everywhere.
        likeness_frames: the look bound empties a mask only once the object's mask has been unlike it
            (and, with ``likeness_peak``, shrunk) in this many frames in a row, counted across clips
            (:func:`unlike_runs`): an object is not cut off its memory for one bad frame.
        find_look: with a value ``s`` in [-1, 1], an object absent before a clip that the readout does not
            find in a frame of it is looked for by its look (:mod:`tamvt.refind`): the frame's cells whose
            features are like its look in its latest given mask, or its recent look (cosine above ``s``, as
            :func:`likeness`), less those like it in the frame where it was lost and those of the other
            objects' masks, are taken as its mask when they form one main region of a plausible size;
            ``None``: no such search.
    """

    min_confidence: float = 0.75
    min_area: float = 0.2
    max_area: float | None = None
    min_peak_area: float | None = None
    redetect: str = "memory"
    reference_check: float | None = None
    min_likeness: float | None = None
    likeness_peak: float | None = None
    likeness_frames: int = 1
    find_look: float | None = None

    @property
    def reads_looks(self) -> bool:
        """Whether the rule reads the objects' looks (the look bound or the search by look)."""
        return self.min_likeness is not None or self.find_look is not None


LOOK_LEVEL = "res3"  # the backbone level an object's look is read from (stride 8: colour and texture)


def _pooled(level: Tensor, masks: Tensor) -> Tensor:
    """``(B, T, C)``: the mean of ``level`` ``(T, C, h, w)`` under each of ``masks`` ``(B, T, H, W)`` (soft
    or binary, any size: area-resized to the level's); 0 under an empty mask."""
    level = level.detach().float()
    m = F.interpolate(masks.detach().float(), size=level.shape[-2:], mode="area")
    # products and sums, not einsum: autocast would run that in bfloat16, and the look is read in fp32
    total = (m[:, :, None] * level[None]).sum((-2, -1))  # (B, T, C)
    return total / m.sum((2, 3))[..., None].clamp(min=1e-6)


def object_look(frame: FrameFeatures, masks: Tensor) -> tuple[Tensor, Tensor]:
    """What ``B`` objects look like in one frame (``T=1``) from their ``masks`` ``(B, 1, H, W)``: their
    ``look`` ``(B, C)``, the frame's :data:`LOOK_LEVEL` features averaged under each mask, and the
    ``centre`` ``(B, C)`` it is compared from, the frame's mean feature (for :func:`likeness`)."""
    level = frame.levels[LOOK_LEVEL]
    if level.shape[0] != 1:
        raise ValueError(f"object_look takes one frame, got {level.shape[0]}")
    look = _pooled(level, masks)[:, 0]  # masks (B, 1, H, W): T = 1
    centre = level.detach().float().mean((0, 2, 3)).expand_as(look)
    return look, centre.clone()


def likeness(frames: FrameFeatures, logits: Tensor, look: Tensor, centre: Tensor) -> Tensor:
    """``(B, T)``: how much each object's mask in each frame looks like it, the cosine of the clip's
    :data:`LOOK_LEVEL` features averaged under the mask (``p > 0.5`` on ``logits`` ``(B, T, h, w)``) and
    its ``look``, both taken from ``centre`` (:func:`object_look`; measured from the features' mean, the
    cosine tells apart what plain ReLU features, all positive, do not). ``look`` and ``centre`` are
    ``(B, C)``, or ``(B, K, C)`` for ``K`` looks of each object (the largest cosine counts). 0 for an
    empty mask."""
    if look.ndim == 2:
        look, centre = look[:, None], centre[:, None]
    fg = (logits.detach() > 0).float()
    pooled = _pooled(frames.levels[LOOK_LEVEL], fg)[:, :, None]  # (B, T, 1, C)
    c = centre.to(pooled)[:, None]  # (B, 1, K, C)
    like = F.cosine_similarity(pooled - c, look.to(pooled)[:, None] - c, dim=-1).amax(2)  # (B, T)
    return torch.where(fg.flatten(2).any(2), like, torch.zeros_like(like))


def logit_stats(logits: Tensor) -> tuple[Tensor, Tensor]:
    """Area and confidence of the masks of logits ``(B, T, h, w)``: ``(B, T)`` each, the fraction of the
    map's cells with ``p > 0.5`` and :func:`mask_confidence` (the mean of ``2p - 1`` over those cells, 0
    if none)."""
    p = torch.sigmoid(logits.detach().float()).flatten(2)  # (B, T, h*w)
    fg = p > 0.5
    count = fg.sum(2).float()
    conf = torch.where(fg, 2 * p - 1, torch.zeros_like(p)).sum(2) / count.clamp(min=1)
    return count / p.shape[2], conf


def touches_edge(logits: Tensor) -> Tensor:
    """``(B, T)`` bool: whether each mask of logits ``(B, T, h, w)`` (``p > 0.5``) has a cell on the map's
    outer ring, i.e. on the frame's border (the logit map covers the whole frame)."""
    fg = logits.detach() > 0
    ring = torch.ones(fg.shape[-2:], dtype=torch.bool, device=fg.device)
    ring[1:-1, 1:-1] = False
    return (fg & ring).flatten(2).any(2)


def presence(
    area: Tensor,
    conf: Tensor,
    expected: Tensor,
    rule: PresenceRule,
    given: Tensor | None = None,
    peak: Tensor | None = None,
    like: Tensor | None = None,
    counts: Tensor | None = None,
) -> Tensor:
    """``(B, T)`` bool: whether each object is present in each frame (:class:`PresenceRule`), from the
    masks' ``area`` and ``conf`` ``(B, T)`` (:func:`logit_stats`), the objects' ``expected`` areas
    ``(B,)``, for ``rule.max_area`` their ``given`` areas ``(B,)``, for ``rule.min_peak_area`` their
    ``peak`` areas ``(B,)`` (fractions of the frame, as ``area``; also for ``rule.likeness_peak``) and for
    ``rule.min_likeness`` the masks' :func:`likeness` ``(B, T)``, or their ``counts`` ``(B, T)``, the frames
    in a row each mask was unlike the object up to it (:func:`unlike_runs`; from ``like`` alone when
    None)."""
    ok = (area > 0) & (area >= rule.min_area * expected.to(area)[:, None]) & (conf >= rule.min_confidence)
    if rule.min_peak_area is not None:
        if peak is None:
            raise ValueError("presence: min_peak_area needs the objects' peak areas")
        ok &= area >= rule.min_peak_area * peak.to(area)[:, None]
    if rule.max_area is not None:
        if given is None:
            raise ValueError("presence: max_area needs the objects' given areas")
        g = given.to(area)[:, None]
        ok &= (area <= rule.max_area * g) | (g <= 0)  # no bound from an empty given mask
    if rule.min_likeness is not None:
        if counts is None:
            if like is None:
                raise ValueError("presence: min_likeness needs the masks' likeness")
            counts = unlike_runs(unlike_masks(area, like, rule, peak))
        ok &= counts.to(area.device) < rule.likeness_frames
    return ok


def unlike_masks(area: Tensor, like: Tensor, rule: PresenceRule, peak: Tensor | None = None) -> Tensor:
    """``(B, T)`` bool: where the rule's look bound counts, the masks' :func:`likeness` ``like`` below
    ``rule.min_likeness`` (with ``rule.likeness_peak``: where their ``area`` is also below that fraction of
    the objects' ``peak`` areas ``(B,)``); for a rule with ``min_likeness``."""
    if rule.min_likeness is None:
        raise ValueError("unlike_masks: the rule has no min_likeness")
    unlike = like.to(area.device) < rule.min_likeness
    if rule.likeness_peak is not None:
        if peak is None:
            raise ValueError("presence: likeness_peak needs the objects' peak areas")
        unlike &= area < rule.likeness_peak * peak.to(area)[:, None]
    return unlike


def unlike_runs(unlike: Tensor, run: Tensor | None = None) -> Tensor:
    """``(B, T)`` long: how many frames in a row each object was ``unlike`` ``(B, T)`` up to each frame,
    going on from ``run`` ``(B,)`` (the count before the clip; 0 when None)."""
    count = torch.zeros(unlike.shape[0], dtype=torch.long, device=unlike.device)
    if run is not None:
        count = run.to(unlike.device).long()
    out = []
    for t in range(unlike.shape[1]):
        count = torch.where(unlike[:, t], count + 1, torch.zeros_like(count))
        out.append(count)
    return torch.stack(out, 1)


def unsupported(logits: Tensor, reference: Tensor, min_support: float) -> Tensor:
    """``(B,)`` bool: the objects whose masks in ``logits`` ``(B, T, h, w)`` (``p > 0.5``, over the clip)
    have less than ``min_support`` of their pixels inside their masks in the ``reference`` readout
    (same shape), where both are non-empty (:attr:`PresenceRule.reference_check`)."""
    mine, theirs = logits.detach() > 0, reference.detach() > 0
    size = mine.flatten(1).sum(1)
    inside = (mine & theirs).flatten(1).sum(1)
    return (size > 0) & theirs.flatten(1).any(1) & (inside < min_support * size)


def _take_for(objects: Tensor, other: list[Tensor], logits: list[Tensor]) -> list[Tensor]:
    """``logits`` (per decoder layer, ``(B, T, h, w)`` each) with the rows of ``objects`` ``(B,)`` bool
    taken from the ``other`` readout."""
    pick = objects.to(logits[-1].device)[:, None, None, None]
    return [torch.where(pick, r, m) for r, m in zip(other, logits, strict=True)]


OUTSIDE_LOGIT = -20.0  # final logit outside an object's search region (probability ~2e-9)


def search_region(masks: Tensor, window: float) -> Tensor:
    """Where each object may be in the next clip (local search): ``(B, 1, H, W)`` bool, from the objects'
    last masks ``(B, H, W)`` bool.

    The region is the mask's bounding box grown on every side by ``window`` times its longer side plus
    8 pixels, so it follows a moving object and holds the pieces of a cut one that drift apart a little
    per clip. An object whose last mask is empty (lost or occluded) is searched everywhere, so it can be
    found again."""
    b, height, width = masks.shape
    region = torch.ones((b, 1, height, width), dtype=torch.bool, device=masks.device)
    for k in range(b):
        ys = torch.nonzero(masks[k].any(1)).flatten()
        xs = torch.nonzero(masks[k].any(0)).flatten()
        if ys.numel() == 0:
            continue
        y0, y1, x0, x1 = int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1
        margin = math.ceil(window * max(y1 - y0, x1 - x0)) + 8
        region[k] = False
        region[k, :, max(0, y0 - margin) : y1 + margin, max(0, x0 - margin) : x1 + margin] = True
    return region


def find_by_look(
    frames: FrameFeatures,
    final: Tensor,
    present: Tensor,
    areas: Tensor,
    lost: Tensor | None,
    look: tuple[Tensor, Tensor],
    peak: Tensor,
    stale: tuple[Tensor, Tensor] | None,
    threshold: float,
) -> tuple[Tensor, Tensor, Tensor, tuple[Tensor, Tensor]]:
    """The rule's ``find_look`` (:mod:`tamvt.refind`) on one clip: the final logits ``(B, T, h, w)``,
    ``present`` and ``areas`` ``(B, T)`` with the objects found by their looks, and the objects' records
    after the clip.

    An object ``lost`` before the clip and absent from a frame of it is looked for there. Its cells are
    those like any of its ``look`` s (:func:`tamvt.refind.look_map` above ``threshold``; ``(B, C)``, its
    look in its latest given mask, or ``(B, K, C)`` with its recent look too). Those in the frame where
    it was lost are its record (``stale``): kept from the clip it goes absent in (its first frame for
    one lost before the clip without a record) until the readout finds it at a clip's last frame (one
    found by its look keeps its record)."""
    b, t = present.shape
    gone = lost.to(present.device) if lost is not None else torch.zeros(b, dtype=torch.bool, device=present.device)
    level = frames.levels[LOOK_LEVEL]
    if stale is None:
        stale = (torch.zeros((b, *level.shape[-2:]), dtype=torch.bool, device=level.device), torch.zeros_like(gone))
    cells, kept = stale[0].to(level.device), stale[1].to(gone.device)
    seen = present[:, -1]  # the readout's: the record goes once the readout itself finds the object again
    searched = gone[:, None] & ~present
    record = ~seen & ~kept  # absent at the clip's end without a record: record now
    if not bool(searched.any()) and not bool(record.any()):
        return final, present, areas, (cells, kept & ~seen)
    like = look_map(level, *look) > threshold  # (B, T, h, w): like any of its looks
    at = torch.where(gone, 0, t - 1).to(like.device)  # the frame it was lost in (this clip's first, if before)
    now = grow(like[torch.arange(b, device=like.device), at])
    cells = torch.where(record.to(like.device)[:, None, None], now, cells)
    fg = F.interpolate((final.detach() > 0).float(), size=like.shape[-2:], mode="area") > 0  # (B, T, h, w)
    taken = (fg.sum(0, keepdim=True) - fg.long()) > 0  # the other objects' cells
    found = find_lost(like, searched.to(like.device), taken, cells, peak.to(like.device))
    hit = found.flatten(2).any(2).to(present.device)
    if bool(hit.any()):
        up = F.interpolate(found.float(), size=final.shape[-2:], mode="nearest") > 0.5
        final = torch.where(up, torch.full_like(final, FIND_LOGIT), final)
        present = present | hit
        areas = torch.where(hit, up.flatten(2).float().mean(2).to(areas), areas)
    return final, present, areas, (cells, (kept | record) & ~seen)


def step_clip(
    model: TamVT,
    bank: MemoryBank,
    frames: FrameFeatures,
    *,
    update_memory: bool = True,
    frame: int | None = None,
    min_confidence: float = 0.0,
    top_k: int | None = None,
    region: Tensor | None = None,
    oracle_mask: Tensor | None = None,
    presence_rule: PresenceRule | None = None,
    expected_area: Tensor | None = None,
    given_area: Tensor | None = None,
    peak_area: Tensor | None = None,
    lost: Tensor | None = None,
    look: tuple[Tensor, Tensor] | None = None,
    unlike_run: Tensor | None = None,
    stale: tuple[Tensor, Tensor] | None = None,
    free: bool = False,
) -> ClipOutput:
    """Segment one clip against the bank, then append its last frame + soft prediction to the bank.

    Works with or without gradients (the trainer calls it with grad enabled; the memory mask is
    always detached, as in the authors' training).

    Args:
        model: the network.
        bank: memory of the ``B`` objects (at least the reference entry).
        frames: the clip's ``T`` encoded frames (:meth:`TamVT.encode_frames`).
        update_memory: append the last frame to ``bank`` (False: leave the bank untouched).
        frame: the video frame index of the clip's last frame (recorded in the bank).
        min_confidence: confidence gating: the last frame is not written when some object's
            :func:`mask_confidence` is below this: the entry is shared by the ``B`` objects, and an
            empty or very uncertain mask in it would push a good entry out; 0 = always write (the
            paper's).
        top_k: top-k memory reading (:meth:`TamVT.match`); ``None``: every memory token (the paper's).
        region: local search, ``(B, 1, h, w)`` bool at any size (:func:`search_region`; resized to the
            logits by nearest neighbour): the final logits of
            object ``b`` are set to :data:`OUTSIDE_LOGIT` outside ``region[b]`` in every frame of the clip,
            before the memory mask is made from them; ``None``: the whole frame (the paper's).
        oracle_mask: ``(B, 1, H, W)`` masks written to memory with the last frame in place of the
            prediction (a diagnostic: a memory that is never wrong); gating still judges the prediction,
            and :attr:`ClipOutput.memory_mask` stays the prediction's.
        presence_rule: lost and found (:class:`PresenceRule`): an object absent from a frame by the rule
            gets :data:`OUTSIDE_LOGIT` in that frame's final logits (its output is empty), and the last
            frame is written to memory only when some object is present there (an absent object's mask in
            that entry is empty); ``None``: no rule (the paper's).
        expected_area: ``(B,)`` the objects' expected areas as fractions of the frame (the area when
            last seen present; required with ``presence_rule``).
        given_area: ``(B,)`` the objects' areas in their nearest given masks, fractions of the frame
            (required with the rule's ``max_area``).
        peak_area: ``(B,)`` the objects' largest areas since those given masks, fractions of the frame
            (required with the rule's ``min_peak_area``).
        lost: ``(B,)`` bool, the objects absent from the frame before the clip: with the rule's
            ``redetect="reference"`` their logits come from a second readout of the permanent entries alone;
            with ``redetect="anywhere"`` they are the larger of theirs and those of a second readout of the
            whole memory by appearance alone (frames and entries encoded with ``free=True``).
        look: ``(look, centre)``, the objects' :func:`object_look` in their latest given masks, ``(B, C)``
            each, or ``(B, K, C)`` with ``K`` looks per object (:func:`likeness`; required with the rule's
            ``min_likeness``).
        unlike_run: ``(B,)`` the frames in a row before the clip each object's mask was unlike it, for the
            rule's ``likeness_frames`` (:func:`unlike_runs`; 0 when None); the count after the clip is
            :attr:`ClipOutput.unlike_run`.
        stale: for the rule's ``find_look``, the objects' records before the clip
            (:attr:`ClipOutput.stale`; none when None).
        free: read the memory by appearance alone for every object (:meth:`TamVT.match` ``free=True``; the
            training's position drop).
    """
    z = model.match(frames, bank.entries, top_k, free=True) if free else model.match(frames, bank.entries, top_k)
    logits = model.decode(frames, z)
    rule = presence_rule
    searched = lost if rule is not None and lost is not None and bool(lost.any()) else None  # lost before the clip
    if rule is not None and searched is not None and rule.redetect == "anywhere":
        by_look = model.decode(frames, model.match(frames, bank.entries, top_k, free=True))
        logits = _take_for(searched, [torch.maximum(a, b) for a, b in zip(by_look, logits, strict=True)], logits)
    redetect = searched if rule is not None and rule.redetect == "reference" else None
    again = None  # the readout of the permanent entries alone, when the rule needs it
    wanted = rule is not None and (rule.reference_check is not None or redetect is not None)
    if wanted and 0 < bank.num_references < len(bank):
        again = model.decode(frames, model.match(frames, bank.entries[: bank.num_references], top_k))
    if again is not None and redetect is not None:
        logits = _take_for(redetect, again, logits)
    if region is not None:
        final = logits[-1]
        if tuple(region.shape[-2:]) != tuple(final.shape[-2:]):
            region = F.interpolate(region.float(), size=final.shape[-2:], mode="nearest") > 0.5
        logits = [*logits[:-1], final.masked_fill(~region, OUTSIDE_LOGIT)]
    if again is not None and rule is not None and rule.reference_check is not None:
        logits = _take_for(unsupported(logits[-1], again[-1], rule.reference_check), again, logits)
    present = areas = counts = run_after = None
    if presence_rule is None or presence_rule.find_look is None:
        stale = None
    if presence_rule is not None:
        if expected_area is None:
            raise ValueError("a presence rule needs the objects' expected areas")
        areas, conf = logit_stats(logits[-1])
        like = None
        if presence_rule.min_likeness is not None:
            if look is None:
                raise ValueError("a presence rule with min_likeness needs the objects' looks")
            like = likeness(frames, logits[-1], *look)
            counts = unlike_runs(unlike_masks(areas, like, presence_rule, peak_area), unlike_run)  # (B, T)
            if presence_rule.likeness_frames > 1:  # the count goes on in the next clip
                run_after = counts[:, -1]
        present = presence(areas, conf, expected_area, presence_rule, given_area, peak_area, like, counts)
        logits = [*logits[:-1], logits[-1].masked_fill(~present[:, :, None, None], OUTSIDE_LOGIT)]
        if presence_rule.find_look is not None:
            if look is None or peak_area is None:
                raise ValueError("a presence rule with find_look needs the objects' looks and peak areas")
            final, present, areas, stale = find_by_look(
                frames, logits[-1], present, areas, lost, look, peak_area, stale, presence_rule.find_look
            )
            logits = [*logits[:-1], final]
    last = logits[-1][:, -1:].detach()  # (B, 1, H/4, W/4)
    # interpolate logits first, then sigmoid (authors' order)
    mask = torch.sigmoid(F.interpolate(last.float(), size=frames.image_size, mode="bilinear", align_corners=False))
    write = update_memory and confident(mask, min_confidence)
    if present is not None:  # an entry only when someone is there: the memory keeps its last good frames
        write = write and bool(present[:, -1].any())
    if write:
        bank.add(model.encode_memory(frames.select(-1), mask if oracle_mask is None else oracle_mask), frame=frame)
    return ClipOutput(
        logits=logits,
        memory_mask=mask,
        written=write,
        present=present,
        areas=areas,
        unlike_run=run_after,
        stale=stale,
    )
