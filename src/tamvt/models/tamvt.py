"""The TAM-VT network (paper Fig. 2) as stage methods that the online predictor and the trainer compose.

Stages (``B`` objects share one video's frames; ``T`` frames per call):

* :meth:`TamVT.encode_frames` -- backbone + position encodings + matching projections, once per frame;
* :meth:`TamVT.encode_memory` -- one memory entry (keys from the already encoded frame, values from
  the object masks through the same backbone), projected once and cached;
* :meth:`TamVT.match` -- multi-scale matching of query frames against memory entries;
* :meth:`TamVT.decode` -- pixel decoder + space-time decoder + mask head: per-layer logits.

The clip-by-clip loop itself lives once, in :func:`tamvt.memory.step_clip`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from tamvt.config import ModelConfig
from tamvt.models.backbone import Backbone
from tamvt.models.decoder import SpaceTimeDecoder
from tamvt.models.mask_head import MaskHead
from tamvt.models.matching import Matching
from tamvt.models.pixel_decoder import PixelDecoder
from tamvt.models.position_encoding import sine_position_encoding

MATCHING_LEVELS = ("res5", "res4", "res3")  # matching scales 1..3: strides 32, 16, 8
DECODER_LEVELS = ("res5", "res4", "res3")  # FPN levels the decoder cycles through


@dataclass(frozen=True)
class FrameFeatures:
    """Encoded frames (computed once per frame, shared by every object and memory entry).

    Attributes:
        levels: backbone outputs ``{"res2": (T, C2, H/4, W/4), ..., "res5": (T, C5, H/32, W/32)}``.
        pos: sine position encodings ``{"res3"|"res4"|"res5": (1, d, h, w)}``.
        match_in: per matching scale (stride 32, 16[, 8]) ``(T, d, h, w)`` = projection + position.
        image_size: input ``(H, W)``.
        match_free: the projections without the position (or with a share of it), as ``match_in``, when
            asked for (:meth:`TamVT.encode_frames` ``free=True``): matching by appearance alone.
    """

    levels: dict[str, Tensor]
    pos: dict[str, Tensor]
    match_in: tuple[Tensor, ...]
    image_size: tuple[int, int]
    match_free: tuple[Tensor, ...] | None = None

    @property
    def num_frames(self) -> int:
        return self.levels["res5"].shape[0]

    def select(self, index: int | slice) -> FrameFeatures:
        """The features of frame ``index`` (kept as ``T=1``) or of a slice of frames."""
        if isinstance(index, int):
            index = range(self.num_frames)[index]
            index = slice(index, index + 1)
        return FrameFeatures(
            {k: v[index] for k, v in self.levels.items()},
            self.pos,
            tuple(m[index] for m in self.match_in),
            self.image_size,
            None if self.match_free is None else tuple(m[index] for m in self.match_free),
        )

    @staticmethod
    def cat(frames: Sequence[FrameFeatures]) -> FrameFeatures:
        """Frames encoded separately, concatenated in time into one clip (``T`` = the sum of theirs)."""
        if len(frames) == 1:
            return frames[0]
        first = frames[0]
        levels = {k: torch.cat([f.levels[k] for f in frames]) for k in first.levels}
        match_in = tuple(torch.cat([f.match_in[s] for f in frames]) for s in range(len(first.match_in)))
        parts = [f.match_free for f in frames if f.match_free is not None]  # kept when every frame has them
        free = None if len(parts) < len(frames) else tuple(torch.cat(scale) for scale in zip(*parts, strict=True))
        return FrameFeatures(levels, first.pos, match_in, first.image_size, free)


@dataclass
class MemoryEntry:
    """One memory frame with the masks of ``B`` objects, projected once for every matching block.

    Attributes:
        keys: per matching scale ``(h*w, d)``: ``fc_k(LN(frame feat + pos))``.
        values: per matching scale ``(B, h*w, d)``: ``fc_v(mask feat + pos)``.
        entry_id: insertion number assigned by :class:`tamvt.memory.MemoryBank` (0 = reference).
        free_keys: per matching scale ``(h*w, d)``: ``fc_k(LN(frame feat))`` (``+ f * pos`` with
            ``free_position=f``), when the frame was encoded with ``free=True``; else None.
    """

    keys: tuple[Tensor, ...]
    values: tuple[Tensor, ...]
    entry_id: int = -1
    free_keys: tuple[Tensor, ...] | None = None

    @property
    def num_objects(self) -> int:
        return self.values[0].shape[0]


class TamVT(nn.Module):
    """TAM-VT assembled from its parts; build it with :func:`build_tamvt`.

    Args:
        backbone: shared ResNet for frames and masks.
        frame_proj: 1x1 convs (with bias) to d for frame features, keyed by matching level
            (``res5``, ``res4``[, ``res3``]); shared by query and memory frames.
        mask_proj: the same for mask features.
        matching: multi-scale matching + RTE.
        pixel_decoder: FPN.
        decoder: space-time decoder.
        mask_head: LayerNorm + MLP + dot product.
    """

    def __init__(
        self,
        backbone: Backbone,
        frame_proj: nn.ModuleDict,
        mask_proj: nn.ModuleDict,
        matching: Matching,
        pixel_decoder: PixelDecoder,
        decoder: SpaceTimeDecoder,
        mask_head: MaskHead,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.frame_proj = frame_proj
        self.mask_proj = mask_proj
        self.matching = matching
        self.pixel_decoder = pixel_decoder
        self.decoder = decoder
        self.mask_head = mask_head
        self.matching_levels: tuple[str, ...] = tuple(frame_proj.keys())
        self.hidden_dim: int = decoder.level_embed.shape[1]

    @property
    def bank_size(self) -> int:
        """Largest memory the RTE table covers."""
        return self.matching.rte.bank_size

    def expand_bank(self, bank_size: int) -> None:
        """Allow memories of up to ``bank_size`` entries by resampling the RTE table (RTE interpolation,
        SPEC §1.5, :meth:`~tamvt.models.matching.RelativeTimeEncoding.resize`); no-op if not larger."""
        if bank_size > self.bank_size:
            self.matching.rte.resize(bank_size)

    def encode_frames(self, images: Tensor, free: bool = False, free_position: float = 0.0) -> FrameFeatures:
        """``images`` ``(T, 3, H, W)`` (ImageNet-normalised) -> :class:`FrameFeatures`; with ``free``, also
        the matching's inputs without the position encodings (:meth:`match` ``free=True``), or with them
        scaled by ``free_position`` in [0, 1)."""
        levels = self.backbone(images)
        pos = {}
        for name in ("res5", "res4", "res3"):
            h, w = levels[name].shape[-2:]
            pos[name] = sine_position_encoding(h, w, self.hidden_dim, device=images.device, dtype=levels[name].dtype)
        proj = tuple(self.frame_proj[n](levels[n]) for n in self.matching_levels)
        match_in = tuple(p + pos[n] for p, n in zip(proj, self.matching_levels, strict=True))
        if free and free_position:
            proj = tuple(p + free_position * pos[n] for p, n in zip(proj, self.matching_levels, strict=True))
        return FrameFeatures(levels, pos, match_in, (images.shape[-2], images.shape[-1]), proj if free else None)

    def encode_memory(self, frame: FrameFeatures, masks: Tensor) -> MemoryEntry:
        """One memory entry for a frame and the masks of ``B`` objects.

        Args:
            frame: the encoded memory frame (``T=1``; reused, the image is not re-encoded).
            masks: ``(B, 1, H, W)`` probabilities in [0, 1] (not normalised), repeated to 3 channels
                and passed through the backbone.
        """
        if frame.num_frames != 1:
            raise ValueError(f"encode_memory takes one frame, got {frame.num_frames}")
        if masks.ndim != 4 or masks.shape[1] != 1 or tuple(masks.shape[-2:]) != frame.image_size:
            raise ValueError(
                f"masks must be (B, 1, {frame.image_size[0]}, {frame.image_size[1]}), got {tuple(masks.shape)}"
            )
        dtype = frame.match_in[0].dtype
        mask_levels = self.backbone(masks.to(dtype).expand(-1, 3, -1, -1))
        keys, values, free = [], [], []
        for s, name in enumerate(self.matching_levels):
            block = self.matching.scale_blocks()[s]
            keys.append(block.project_keys(frame.match_in[s][0].flatten(1).t()))  # (h*w, d)
            if frame.match_free is not None:
                free.append(block.project_keys(frame.match_free[s][0].flatten(1).t()).float())
            v = self.mask_proj[name](mask_levels[name]) + frame.pos[name]  # (B, d, h, w)
            values.append(block.project_values(v.flatten(2).transpose(1, 2)))  # (B, h*w, d)
        # stored in fp32 under bf16 autocast too (exact: a bf16 value is an fp32 one); matching casts them back
        return MemoryEntry(
            tuple(k.float() for k in keys), tuple(v.float() for v in values), free_keys=tuple(free) if free else None
        )

    def match(
        self, query: FrameFeatures, entries: Sequence[MemoryEntry], top_k: int | None = None, free: bool = False
    ) -> list[Tensor]:
        """Matching outputs ``Z`` per scale, ``(B*T, d, h, w)`` (index ``b*T + t``).

        ``entries`` must be in memory order ``[reference, oldest, ..., newest]`` (the RTE depends on it).
        ``top_k``: each query token reads only its ``top_k`` most similar memory tokens; ``None``: all.
        ``free``: queries and keys without the position encodings (appearance alone; the frames and
        entries must have been encoded with ``free=True``); the values keep theirs.
        """
        if not entries:
            raise ValueError("matching needs at least one memory entry")
        scales = range(len(self.matching_levels))
        values = [[e.values[s] for e in entries] for s in scales]
        if not free:
            return self.matching(query.match_in, [[e.keys[s] for e in entries] for s in scales], values, top_k)
        if query.match_free is None or any(e.free_keys is None for e in entries):
            raise ValueError("free matching needs frames and memory entries encoded with free=True")
        keys = [[e.free_keys[s] for e in entries if e.free_keys] for s in scales]
        return self.matching(query.match_free, keys, values, top_k)

    def decode(self, query: FrameFeatures, z: Sequence[Tensor]) -> list[Tensor]:
        """Per-decoder-layer mask logits ``(B, T, H/4, W/4)``; the last is the prediction.

        Args:
            query: the ``T`` encoded frames of the clip.
            z: :meth:`match` outputs.
        """
        b = z[0].shape[0] // query.num_frames
        # the mask-feature conv is folded into the mask head (MaskHead.project: same logits, far cheaper)
        y4, multi_scale = self.pixel_decoder.top_down(query.levels, dict(zip(self.matching_levels, z, strict=True)))
        hidden = self.decoder(multi_scale, [query.pos[n] for n in DECODER_LEVELS], b)
        return self.mask_head.project(hidden, y4, self.pixel_decoder.mask_features)


def build_tamvt(cfg: ModelConfig) -> TamVT:
    """A randomly initialised TAM-VT for ``cfg`` (init of SPEC §1.9; load weights separately)."""
    d = cfg.hidden_dim
    backbone = Backbone(cfg.backbone, cfg.backbone_width, cfg.backbone_norm, cfg.backbone_freeze_stem)
    levels = MATCHING_LEVELS[: cfg.matching_scales]
    frame_proj = nn.ModuleDict({n: nn.Conv2d(backbone.channels[n], d, 1) for n in levels})
    mask_proj = nn.ModuleDict({n: nn.Conv2d(backbone.channels[n], d, 1) for n in levels})
    matching = Matching(d, cfg.matching_heads, cfg.matching_scales, cfg.matching_dropout, cfg.rte, cfg.bank_size)
    pixel_decoder = PixelDecoder(backbone.channels, cfg.pixel_decoder_dim)
    decoder = SpaceTimeDecoder(
        d, cfg.decoder_heads, cfg.decoder_ffn, cfg.dropout, cfg.decoder_layers, cfg.time_embed_len
    )
    mask_head = MaskHead(d)
    # authors' init: xavier-uniform on every >1-D transformer parameter (RTE excluded: it is 1-D)
    for part in (matching, pixel_decoder, decoder, mask_head):
        for p in part.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
    with torch.no_grad():
        bias = pixel_decoder.mask_features.bias
        assert bias is not None  # built with a bias
        bias.zero_()
    return TamVT(backbone, frame_proj, mask_proj, matching, pixel_decoder, decoder, mask_head)
