"""Online inference (SPEC §2): a video of any length, clip by clip, many objects, one backbone pass per frame.

    predictor = Predictor.from_checkpoint("tamvt-small.safetensors", short_side=480)
    session = predictor.start("video.mp4")                  # or a frame folder, VideoSequence, frames
    predictor.add_mask(session, 0, 1, mask_of_object_1)      # (H, W) at the original size
    predictor.add_mask(session, 40, 2, mask_of_object_2)     # objects may appear later
    for frame_idx, result in predictor.propagate(session):
        result.mask                                           # (H, W) uint8 merged ids
        result.probs                                          # (K, H, W) float32, ids in result.object_ids

Interactive use (corrections and both directions, as in SAM 2 / Cutie):

    predictor.add_mask(session, 20, 1, fixed_mask)           # a known id: a correction at frame 20
    list(predictor.propagate(session, start=20))              # recomputes 20..end; 0..19 keep theirs
    predictor.remove_annotation(session, 20, 1)               # frame 20 is no longer a reference
    list(predictor.propagate(session, start=20, reverse=True))  # 20, 19, ..., 0
    session.result(k)                                         # stored (H, W) uint8 mask of frame k
    session.reset()                                           # drop results + memory, keep annotations

Live input: ``stream = predictor.stream()``; ``stream.step(frame, mask=...)`` returns the frames that
became complete (clips delay the output by at most L-1 frames) and ``stream.flush()`` the rest at the
end. A stream holds its own session: one predictor serves any number of streams and videos.

How the work is shared: every frame goes through the backbone once (:meth:`TamVT.encode_frames`) and
its features are handed to every group that segments it; each group (objects given in the same frames,
:mod:`tamvt.inference.session`) has one :class:`~tamvt.memory.MemoryBank` with the objects batched in B,
and the clip step is :func:`tamvt.memory.step_clip`, the one the trainer uses. Each memory entry is encoded once. Frames
are read lazily and results are yielded as soon as they are complete, so memory does not grow with
the video length.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor

from tamvt.config import InferenceConfig, TamvtConfig
from tamvt.data.sequence import VideoSequence
from tamvt.devices import autocast_dtype
from tamvt.errors import SessionError, TamvtError
from tamvt.inference.session import ClipRecord, ObjectGroup, Session, Walk, nearest_references
from tamvt.inference.source import check_frame, open_video
from tamvt.inference.transforms import FrameTransforms
from tamvt.memory import (
    MemoryBank,
    PresenceRule,
    encode_entries,
    object_look,
    search_region,
    step_clip,
    touches_edge,
)
from tamvt.models.tamvt import FrameFeatures, TamVT


@dataclass(frozen=True)
class FrameResult:
    """The segmentation of one frame.

    Attributes:
        frame_idx: index in the video; name: frame name (output PNG stem) when the source has names.
        object_ids: ids of the objects present at this frame (given here or earlier), ascending.
        probs: ``(K, H, W)`` float32 CPU probabilities at the original size, one per ``object_ids``
            (the given masks, as 0/1, in an object's reference frame).
        mask: ``(H, W)`` uint8 merged index mask (merge policy of the config).
        image: the input frame ``(H, W, 3)`` uint8 RGB (for overlays).
    """

    frame_idx: int
    name: str | None
    object_ids: tuple[int, ...]
    probs: Tensor
    mask: np.ndarray
    image: np.ndarray

    def binary(self, obj_id: int) -> np.ndarray:
        """Binary mask ``(H, W)`` bool of one object (``p > 0.5``, SPEC §2)."""
        return (self.probs[self.object_ids.index(obj_id)] > 0.5).numpy()


class Predictor:
    """Runs a :class:`TamVT` online over videos.

    Args:
        model: the network (put in eval mode; its device is used). With ``config.bank_size`` above
            ``model.bank_size`` the model's RTE table is resampled in place (RTE interpolation).
        config: inference settings (resize, memory capacity and policy, confidence gating, top-k memory
            reading, local search around each object, merge policy, precision: fp32 or bf16 autocast).
        clip_length: L, frames decoded together (the model's ``ModelConfig.clip_length``).
        channels_last: run the convolutions on NHWC tensors (the model's conv weights are converted in
            place; values unchanged). ``None``: on CPU only, where oneDNN is markedly faster with it
            (outputs differ from NCHW by float rounding, ~1e-5).
    """

    def __init__(
        self,
        model: TamVT,
        config: InferenceConfig | None = None,
        *,
        clip_length: int = 2,
        channels_last: bool | None = None,
    ) -> None:
        self.model = model.eval()
        self.channels_last = self.device.type == "cpu" if channels_last is None else channels_last
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        self.config = config or InferenceConfig()
        self.transforms = FrameTransforms.from_config(self.config)
        # inference.precision on this device: bfloat16 autocast, or None (fp32)
        self.autocast_dtype = autocast_dtype(self.config.precision, self.device)
        if clip_length < 1:
            raise TamvtError(f"clip_length must be >= 1, got {clip_length}")
        self.clip_length = clip_length
        self.presence_rule = (
            PresenceRule(
                min_confidence=self.config.presence_confidence,
                min_area=self.config.presence_area,
                max_area=self.config.presence_max_area,
                min_peak_area=self.config.presence_peak_area,
                redetect=self.config.presence_redetect,
                reference_check=self.config.presence_reference_check,
                min_likeness=self.config.presence_likeness,
                likeness_peak=self.config.presence_likeness_peak,
                likeness_frames=self.config.presence_likeness_frames,
                find_look=self.config.presence_find,
            )
            if self.config.presence
            else None
        )
        self.capacity = self.config.bank_size or model.bank_size
        # permanent entries take slots from the recent frames: one slot at least stays for those
        self.max_references = max(1, min(self.config.max_references, self.capacity - 1))
        if self.capacity > model.bank_size:
            if not self.config.interpolate_rte:
                raise TamvtError(
                    f"inference.bank_size={self.capacity} exceeds the model's {model.bank_size}; "
                    "set inference.interpolate_rte=true to resample the RTE table"
                )
            model.expand_bank(self.capacity)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        *,
        preset: str | TamvtConfig | None = None,
        device: str | torch.device = "cpu",
        channels_last: bool | None = None,
        config_overrides: Sequence[str] = (),
        **overrides: Any,
    ) -> Predictor:
        """Load a tamvt checkpoint and run it with the checkpoint's inference settings, changed by
        ``config_overrides`` (``["inference.bank_size=12"]``, as on the command line) and then by
        ``overrides``, :class:`InferenceConfig` fields (``short_side=None``, ``merge="first-wins"``, ...).
        ``preset``: fail with a clear error if the checkpoint holds another architecture."""
        from tamvt.checkpoint import load_checkpoint
        from tamvt.config import apply_inference_overrides

        model, cfg = load_checkpoint(path, preset, device=device)
        cfg = apply_inference_overrides(cfg, list(config_overrides))
        try:
            inference = dataclasses.replace(cfg.inference, **overrides)
        except TypeError as err:
            names = ", ".join(f.name for f in dataclasses.fields(InferenceConfig))
            raise TamvtError(f"unknown inference setting ({err}); known: {names}") from None
        return cls(cast(TamVT, model), inference, clip_length=cfg.model.clip_length, channels_last=channels_last)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def input_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """Network input ``(h, w)`` for frames of ``size`` (SPEC §2 resize rule)."""
        return self.transforms.input_size(size)

    # ---- session API ---------------------------------------------------------------------------

    def start(
        self,
        video: VideoSequence | str | Path | np.ndarray | Sequence[np.ndarray],
        *,
        keep_results: bool = True,
        on_clip: Callable[[ClipRecord], None] | None = None,
        oracle_memory: Callable[[int], np.ndarray] | None = None,
    ) -> Session:
        """A new session over ``video``: a :class:`VideoSequence`, a frame folder or video file, or
        frames ``(T, H, W, 3)`` uint8 RGB. Nothing is decoded yet. ``keep_results``: store each produced
        frame's merged mask for :meth:`Session.result` (compressed; False when the caller writes the
        results as they come). ``on_clip``, ``oracle_memory``: diagnostics (:class:`Session`): a callback
        per segmented clip, and ground truth written to memory in place of the predictions."""
        source = open_video(video)
        size = (int(source.size[0]), int(source.size[1]))
        return Session(
            source,
            size,
            self.input_size(size),
            self.capacity,
            num_frames=len(source),
            keep_results=keep_results,
            on_clip=on_clip,
            oracle_memory=oracle_memory,
        )

    def stream(self) -> LiveStream:
        """A new live stream: frames fed one by one (:class:`LiveStream`)."""
        return LiveStream(self)

    def add_mask(self, session: Session, frame_idx: int, obj_id: int, mask: np.ndarray | Tensor) -> bool:
        """Give object ``obj_id`` (1..255) by its ``mask (H, W)`` (original size) in frame ``frame_idx``.

        For a new id this adds an object (objects given in the same frames share one memory; later
        objects get their own). For a known id it is a **correction**, at any frame, processed or not:
        the frame becomes one more permanent reference of that object (every annotated frame is one; the
        clips read the ``max_references`` nearest in time, :func:`~tamvt.inference.session.nearest_references`)
        and the next :meth:`propagate` from there recomputes the frames after it; frames before it keep
        their results. An empty correction means "not visible here". Returns True for a correction."""
        return session.add_object(frame_idx, obj_id, mask)

    def remove_annotation(self, session: Session, frame_idx: int, obj_id: int) -> None:
        """Drop the mask of ``obj_id`` given in ``frame_idx`` and its permanent memory entry
        (:meth:`Session.remove_annotation`): the next :meth:`propagate` runs as if it had never been
        given; stored results stay until recomputed. The object's last non-empty mask cannot be removed
        (:meth:`remove_object` removes the object)."""
        session.remove_annotation(frame_idx, obj_id)

    def add_index_mask(
        self,
        session: Session,
        frame_idx: int,
        index_mask: np.ndarray,
        objects: Sequence[int] | None = None,
        void_id: int | None = None,
    ) -> list[int]:
        """Add every object of an index mask ``(H, W)`` (or only ``objects``); returns the ids added."""
        ids = index_ids(index_mask, objects, void_id)
        for obj in ids:
            session.add_object(frame_idx, obj, index_mask == obj)
        return ids

    def remove_object(self, session: Session, obj_id: int) -> None:
        """Stop tracking ``obj_id``: frames yielded after this call do not contain it."""
        with torch.inference_mode():
            session.remove_object(obj_id)

    def reset(self, session: Session) -> None:
        """Drop every result and memory of ``session``; its frames and annotations stay (:meth:`Session.reset`)."""
        session.reset()

    def _without_removed(self, session: Session, result: FrameResult) -> FrameResult:
        """``result`` without the objects removed since it was computed (results are computed up to
        L-1 frames before they are yielded)."""
        keep = [k for k, obj in enumerate(result.object_ids) if obj in session.annotations]
        if len(keep) == len(result.object_ids):
            return result
        ids = [result.object_ids[k] for k in keep]
        probs = result.probs[keep]
        return dataclasses.replace(result, object_ids=tuple(ids), probs=probs, mask=self.merge(probs, ids))

    def propagate(
        self, session: Session, start: int | None = None, reverse: bool = False
    ) -> Iterator[tuple[int, FrameResult]]:
        """Yield ``(frame_idx, FrameResult)`` for every frame from ``start`` to the end of the video
        (``reverse=True``: start, start-1, ..., 0), in that order, as soon as each is complete.

        ``start`` defaults to the first annotated frame (the last one when reversed). Frames before
        every object's first mask (in walk order) come out with no objects; annotated frames come out
        with the given masks. The frame order is the only difference between the directions: the clip
        logic is the same. Stopping early and calling again with the same direction (and no new
        ``start``) resumes where it stopped, unless masks were added meanwhile: then a new walk is
        planned from the default start (corrections: pass their frame as ``start``)."""
        if session.source is None or session.num_frames is None:
            raise SessionError("a streaming session cannot be propagated; use step() / flush()")
        if not session.annotations:
            raise SessionError("no objects: give at least one mask with add_mask() first")
        step = -1 if reverse else 1
        walk = session.walk
        resume = (
            walk is not None
            and (not walk.finished or walk.outbox)
            and walk.step == step
            and walk.version == session.version
            and start in (None, walk.next_frame)
        )
        if walk is None or not resume:
            if start is None:
                annotated = session.annotated_frames()
                start = annotated[-1] if reverse else annotated[0]
            if not 0 <= start < session.num_frames:
                raise SessionError(f"start frame {start} out of range: the video has {session.num_frames} frames")
            walk = session.plan_walk(start, step)
        # results wait in walk.outbox until yielded, so a generator closed between two results of one
        # clip loses nothing: the next call yields the rest first
        yield from self._drain(session, walk)
        for idx, image in session.iter_walk_frames(walk):
            walk.outbox.extend(self._push(session, walk, idx, image))
            yield from self._drain(session, walk)
        walk.outbox.extend(self._finish(session, walk))
        yield from self._drain(session, walk)

    def _drain(self, session: Session, walk: Walk) -> Iterator[tuple[int, FrameResult]]:
        while walk.outbox:
            result = walk.outbox.popleft()
            yield result.frame_idx, self._without_removed(session, result)

    # ---- the engine --------------------------------------------------------------------------------

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _encode(self, image: np.ndarray) -> FrameFeatures:
        x = self.transforms.frame(image).to(self.device)[None]  # (1, 3, h, w)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.presence_rule is not None and self.presence_rule.redetect == "anywhere":
            # also the matching's inputs without positions (or with them scaled down)
            return self.model.encode_frames(x, free=True, free_position=self.config.presence_anywhere_position)
        return self.model.encode_frames(x)

    def _encode_frame(self, s: Session, frame_idx: int) -> FrameFeatures:
        """Frame ``frame_idx`` read from the session's video again and encoded (an annotated frame's entry)."""
        return self._encode(s.video_source().read_frame(frame_idx))

    def _given_masks(self, s: Session, g: ObjectGroup, frame_idx: int) -> list[np.ndarray]:
        try:
            return [s.annotations[obj][frame_idx] for obj in g.object_ids]
        except KeyError:
            raise SessionError(f"a mask of frame {frame_idx} was removed while propagating: propagate again") from None

    def _reference_masks(self, s: Session, g: ObjectGroup, frame_idx: int) -> Tensor:
        """``(B, 1, h, w)`` binary masks given for the group's objects in ``frame_idx``, at the input size."""
        masks = [self.transforms.mask(m) for m in self._given_masks(s, g, frame_idx)]  # each (1, h, w)
        return torch.stack(masks).to(self.device)

    def _first_clip_frame(self, walk: Walk, g: ObjectGroup, idx: int) -> int:
        """The frame the group's next clip starts at, seen at frame ``idx``: ``idx`` itself unless it is given there."""
        return idx + walk.step if g.given_at(idx) else idx

    def _select_references(
        self, s: Session, walk: Walk, g: ObjectGroup, t: int, here: tuple[int, FrameFeatures] | None = None
    ) -> None:
        """Make the group's permanent entries the annotated frames nearest to frame ``t``, in the memory
        order of :func:`nearest_references`; entries already held are kept, a frame that enters
        is read and encoded again (``here``: a frame's features at hand). With one annotated frame, or
        while the nearest set and its order stay the same, nothing changes."""
        bank = g.memory
        wanted = nearest_references(g.annotated, t, walk.step, self.max_references)
        if tuple(bank.reference_frames) == wanted:
            return
        held = dict(zip(bank.reference_frames, bank.entries[: bank.num_references], strict=True))
        entries = []
        for f in wanted:
            entry = held.get(f)
            if entry is None:
                feats = here[1] if here is not None and here[0] == f else self._encode_frame(s, f)
                entry = encode_entries(self.model, feats, self._reference_masks(s, g, f))[0]
            entries.append(entry)
        bank.set_references(entries, wanted)

    def _push(self, s: Session, walk: Walk, idx: int, image: np.ndarray) -> list[FrameResult]:
        """Process frame ``idx``: encode it once, seed the groups starting here, hand it to the groups
        that segment it, and take the given masks of the groups annotated here (corrections)."""
        if idx != walk.next_frame:
            raise SessionError(f"frames must come in order: expected frame {walk.next_frame}, got {idx}")
        starting = walk.starting_groups(idx)
        segmenting = walk.segmenting_groups(idx)
        given = [g for g in walk.groups if g.given_at(idx) and (g.encoded or g in starting)]
        rec = walk.open_frame(idx, image, segmenting)
        if starting or segmenting or given:
            with torch.inference_mode(), self._autocast():
                feats = self._encode(image)
                for g in starting:  # an empty bank, then the annotated frames nearest its first clip
                    g.bank = MemoryBank(s.capacity, self.config.memory, self.config.memory_recent)
                    self._select_references(s, walk, g, self._first_clip_frame(walk, g, idx), (idx, feats))
                    if self.config.search_window is not None:  # from the latest mask given at or before the start
                        self._keep_last_masks(g, self._reference_masks(s, g, g.references[-1])[:, 0])
                    self._keep_seen_area(s, g, g.references[-1], (idx, feats))
                for g in given:
                    if g not in starting:  # a correction met by the walk: finish the clip before it
                        if g.pending:
                            self._run_clip(s, walk, g, update_memory=True)
                        self._select_references(s, walk, g, idx + walk.step, (idx, feats))
                        if self.config.search_window is not None:  # the search moves to the correction
                            self._keep_last_masks(g, self._reference_masks(s, g, idx)[:, 0])
                        self._keep_seen_area(s, g, idx, (idx, feats))
                    for obj, m in zip(g.object_ids, self._given_masks(s, g, idx), strict=True):
                        rec.probs[obj] = torch.from_numpy(m.astype(np.float32))
                for g in segmenting:
                    g.pending.append((idx, feats))
                del feats  # the pending lists hold it; dropped once every group's clip is decoded
                last = idx == walk.last
                for g in segmenting:
                    if len(g.pending) == self.clip_length or last:
                        # the video's last clip: its memory entry would never be read
                        self._run_clip(s, walk, g, update_memory=not last)
        return self._emit(s, walk)

    def _finish(self, s: Session, walk: Walk) -> list[FrameResult]:
        """End of the walk: decode every group's incomplete clip (shorter than L) and return the rest."""
        with torch.inference_mode(), self._autocast():
            for g in walk.groups:
                if g.pending:
                    self._run_clip(s, walk, g, update_memory=False)
        out = self._emit(s, walk)
        assert not walk.pending_frames, "every frame is complete once all clips are decoded"
        walk.finished = True
        return out

    def _run_clip(self, s: Session, walk: Walk, g: ObjectGroup, update_memory: bool) -> None:
        """Segment the group's pending clip and hand each frame's probabilities to its pending record."""
        indices = [idx for idx, _ in g.pending]
        clip = FrameFeatures.cat([f for _, f in g.pending])
        g.pending.clear()  # frames no other group waits for are freed now: only the clip copy stays
        self._select_references(s, walk, g, indices[0])
        bank = g.memory
        # what the memory held before this clip, for the on_clip record only (copies: the step changes them)
        diag = (bank.frames, bank.entry_ids) if s.on_clip is not None else None
        region = None
        if self.config.search_window is not None and g.last_masks is not None:
            region = search_region(g.last_masks, self.config.search_window)
        oracle = None
        if update_memory and s.oracle_memory is not None:
            truth = s.oracle_memory(indices[-1])  # (H, W) index mask
            oracle = torch.stack([self.transforms.mask(truth == obj) for obj in g.object_ids]).to(self.device)
        out = step_clip(
            self.model,
            bank,
            clip,
            update_memory=update_memory,
            frame=indices[-1],
            min_confidence=self.config.memory_gate,
            top_k=self.config.top_k,
            region=region,
            oracle_mask=oracle,
            presence_rule=self.presence_rule,
            expected_area=g.seen_area,
            given_area=g.given_area,
            peak_area=g.peak_area,
            lost=g.lost,
            look=self._looks(g),
            unlike_run=g.unlike_run,
            stale=None if g.stale_cells is None or g.stale_kept is None else (g.stale_cells, g.stale_kept),
        )
        if out.unlike_run is not None:
            g.unlike_run = out.unlike_run
        if out.stale is not None:
            g.stale_cells, g.stale_kept = out.stale
        looked = self.presence_rule is not None and self.presence_rule.reads_looks
        if looked and self.config.presence_likeness_recent and out.present is not None and out.written:
            self._keep_recent_look(g, clip.select(-1), out.memory_mask > 0.5, out.present[:, -1])
        del clip
        self._keep_last_masks(g, out.memory_mask[:, 0])
        if out.present is not None and out.areas is not None and g.seen_area is not None:
            # each object's area the last time it was present in this clip (unchanged while absent; with
            # presence_edge_hold, also while its mask is on the frame's border)
            kept = out.present
            if self.config.presence_edge_hold:
                kept = kept & ~touches_edge(out.logits[-1])
            for t in range(out.present.shape[1]):
                g.seen_area = torch.where(kept[:, t], out.areas[:, t].to(g.seen_area), g.seen_area)
            if g.peak_area is not None:  # the largest area while present (areas are >= 0)
                seen = torch.where(out.present, out.areas, torch.zeros_like(out.areas)).amax(1)
                g.peak_area = torch.maximum(g.peak_area, seen.to(g.peak_area))
            g.lost = ~out.present[:, -1]
        if s.on_clip is not None and diag is not None:
            held, before = diag
            s.on_clip(
                ClipRecord(
                    tuple(g.object_ids),
                    tuple(indices),
                    tuple(f for f in held if f is not None),
                    bank.entry_ids != before,
                    None if out.present is None else tuple(tuple(row) for row in out.present.tolist()),
                )
            )
        logits = out.pred_logits  # (B, T, h/4, w/4)
        for t, idx in enumerate(indices):
            probs = self.transforms.probs(logits[:, t], s.size).cpu()  # (B, H, W) at the original size
            rec = walk.pending_frames[idx]
            for b, obj in enumerate(g.object_ids):
                rec.probs[obj] = probs[b]
            rec.waiting.discard(g.key)

    def _keep_seen_area(
        self, s: Session, g: ObjectGroup, frame_idx: int, here: tuple[int, FrameFeatures] | None = None
    ) -> None:
        """Presence rule: the objects' areas (fractions of the frame) in the masks given in ``frame_idx``
        are their expected and given areas from there on, and with ``presence_likeness`` their looks
        there too (``here``: a frame's features at hand). An empty correction ("not visible here") keeps
        the areas and the look the object had, so it can be found again."""
        if self.presence_rule is None:
            return
        masks = self._reference_masks(s, g, frame_idx)
        area = masks.flatten(1).float().mean(1)  # (B,)
        if self.presence_rule.reads_looks:
            feats = here[1] if here is not None and here[0] == frame_idx else self._encode_frame(s, frame_idx)
            given = torch.stack(object_look(feats, masks), 1)[:, None]  # (B, 1, 2, C)
            # a mask given here is how the object looks now: its recent look too, if it has one
            keep = (area > 0)[:, None, None, None]
            g.looks = given if g.looks is None else torch.where(keep, given, g.looks.to(given))
        g.seen_area = area if g.seen_area is None else torch.where(area > 0, area, g.seen_area.to(area))
        g.given_area = area if g.given_area is None else torch.where(area > 0, area, g.given_area.to(area))
        # the peak starts again from each given mask (a correction's object may be smaller for good)
        g.peak_area = area if g.peak_area is None else torch.where(area > 0, area, g.peak_area.to(area))
        if g.unlike_run is not None:  # a mask given here starts the look bound's count again
            g.unlike_run = torch.where(area > 0, torch.zeros_like(g.unlike_run), g.unlike_run.to(area.device))
        if g.stale_kept is not None:  # and is looked for anew once lost again
            g.stale_kept = g.stale_kept.to(area.device) & (area <= 0)
        # a mask given here: the object is not lost (an empty correction says it is not visible here)
        g.lost = area <= 0 if g.lost is None else g.lost.to(area.device) & (area <= 0)

    def _looks(self, g: ObjectGroup) -> tuple[Tensor, Tensor] | None:
        """The objects' looks and their centres for the rule's ``presence_likeness``: ``(B, C)`` each, the
        given masks'; ``(B, 2, C)`` with the recent look too (``presence_likeness_recent``, once written)."""
        if g.looks is None:
            return None
        looks = g.looks[:, 0] if g.looks.shape[1] == 1 else g.looks
        return looks[..., 0, :], looks[..., 1, :]

    def _keep_recent_look(self, g: ObjectGroup, frame: FrameFeatures, masks: Tensor, present: Tensor) -> None:
        """``presence_likeness_recent``: the looks of the objects ``present`` ``(B,)`` in ``frame``, just
        written to memory with ``masks`` ``(B, 1, H, W)``, are their recent looks (the others keep theirs;
        an object not present yet compares with its given look)."""
        if g.looks is None:
            return
        now = torch.stack(object_look(frame, masks), 1)  # (B, 2, C)
        given = g.looks[:, :1].to(now)
        recent = given[:, 0] if g.looks.shape[1] == 1 else g.looks[:, 1].to(now)
        recent = torch.where(present.to(now.device)[:, None, None], now, recent)
        g.looks = torch.cat([given, recent[:, None]], 1)

    def _keep_last_masks(self, g: ObjectGroup, masks: Tensor) -> None:
        """Local search: the group's newest masks ``(B, h, w)`` (soft or binary, input size) bound the next clip."""
        if self.config.search_window is not None:
            g.last_masks = masks > 0.5

    def _emit(self, s: Session, walk: Walk) -> list[FrameResult]:
        """Results of the frames that are complete (outside inference mode: returned tensors are normal)."""
        out = []
        names = s.frame_names
        for rec in walk.pop_ready():
            ids = sorted(rec.probs)
            probs = torch.stack([rec.probs[i] for i in ids]) if ids else torch.zeros((0, *s.size))
            result = FrameResult(
                rec.index, names[rec.index] if names else None, tuple(ids), probs, self.merge(probs, ids), rec.image
            )
            if s.keep_results:
                s.results.put(rec.index, result.mask)
            out.append(result)
        return out

    def merge(self, probs: Tensor, ids: Sequence[int]) -> np.ndarray:
        """Merged index mask ``(H, W)`` uint8 of ``probs (K, H, W)`` by the config's policy."""
        return self.transforms.merged(probs, list(ids))


class LiveStream:
    """A live video fed frame by frame through a :class:`Predictor` (:meth:`Predictor.stream`). The
    stream holds its own :class:`Session`, so one predictor serves any number of streams at once.

        stream = predictor.stream()
        for k, frame in enumerate(camera):
            for result in stream.step(frame, mask=first_mask if k == 0 else None):
                ...                                          # results come at most L-1 frames late
        for result in stream.flush():                        # the end: the last, incomplete clips
            ...
    """

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor
        self.session: Session | None = None  # created by the first frame (its size); dropped by flush()

    def step(
        self, frame: np.ndarray, mask: np.ndarray | None = None, objects: Sequence[int] | None = None
    ) -> list[FrameResult]:
        """Feed the next live frame ``(H, W, 3)`` uint8 RGB, optionally with an index ``mask (H, W)``
        giving new objects (all its ids, or only ``objects``). Returns the frames that became complete
        (at most L-1 frames late); call :meth:`flush` at the end."""
        p = self.predictor
        frame = check_frame(np.asarray(frame), None)
        if self.session is None:
            size = (int(frame.shape[0]), int(frame.shape[1]))
            self.session = Session(None, size, p.input_size(size), p.capacity, keep_results=False)
            self.session.plan_walk(0, 1)
        s = self.session
        walk = s.walk
        assert walk is not None, "a stream's session has its walk from the first frame on"
        if mask is not None:
            ids = index_ids(np.asarray(mask), objects, None)
            for obj in ids:
                s.add_object(walk.next_frame, obj, np.asarray(mask) == obj)
        elif objects is not None:
            raise SessionError("objects= needs mask=")
        return p._push(s, walk, walk.next_frame, check_frame(frame, s.size))

    def flush(self) -> list[FrameResult]:
        """Finish the stream: decode the incomplete last clips and return the remaining frames. The next
        :meth:`step` starts a new stream."""
        s, self.session = self.session, None
        if s is None or s.walk is None:
            return []
        return self.predictor._finish(s, s.walk)


def index_ids(index_mask: np.ndarray, objects: Sequence[int] | None, void_id: int | None) -> list[int]:
    """Object ids of an index mask ``(H, W)``: all non-zero ids but ``void_id``, or the ``objects`` asked
    for (each must be present: an unknown id is a :class:`SessionError`)."""
    present = [int(k) for k in np.unique(index_mask) if k != 0 and k != void_id]
    if objects is None:
        return present
    unknown = [int(o) for o in objects if int(o) not in present]
    if unknown:
        raise SessionError(
            f"object id(s) {', '.join(map(str, unknown))} not in the mask "
            f"(it has {', '.join(map(str, present)) or 'none'})"
        )
    return [int(o) for o in objects]
