"""The training forward of one window (SPEC §4): ground-truth memory, then clip by clip.

The first ``num_memory`` frames enter the memory with their ground-truth masks; the remaining query
frames are segmented in clips of ``clip_length`` with :func:`tamvt.memory.step_clip` — the same
clip step the online predictor uses — so after each clip the bank receives the clip's last frame
and its detached soft prediction. Gradients flow through every clip's own computation (frames,
matching, decoding) and through the memory *frames* of the ground-truth entries; the predicted
masks written to memory are detached, as in the authors' training. One backward per window.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from tamvt.memory import seed_bank, step_clip
from tamvt.models.tamvt import TamVT


@dataclass
class UnrollOutput:
    """Outputs of one window.

    Attributes:
        layer_logits: per decoder layer ``(B, Q, H/4, W/4)`` for the ``Q`` query frames of ``B``
            objects (clips concatenated in time); the last layer is the prediction.
        memory_sizes: number of memory entries each clip was matched against.
    """

    layer_logits: list[Tensor]
    memory_sizes: list[int]


def clip_spans(num_query: int, clip_length: int) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` of consecutive clips over ``num_query`` frames; the last may be shorter."""
    return [(s, min(s + clip_length, num_query)) for s in range(0, num_query, clip_length)]


def unroll_window(
    model: TamVT,
    frames: Tensor,
    memory_masks: Tensor,
    num_memory: int,
    clip_length: int,
    capacity: int | None = None,
    keep_all_layers: bool = True,
    position_drop: float = 0.0,
    shown: Tensor | None = None,
) -> UnrollOutput:
    """Run a window clip by clip.

    Args:
        model: the network (train or eval mode; gradients follow the caller's grad mode).
        frames: ``(T, 3, H, W)`` ImageNet-normalised frames; the first ``num_memory`` are memory.
        memory_masks: ``(B, num_memory, H, W)`` ground truth of the ``B`` objects in the memory
            frames, values in [0, 1] (bool / uint8 0-1 / float).
        num_memory: memory frames at the start of the window (>= 1).
        clip_length: query frames per clip.
        capacity: memory capacity N (None: the model's RTE table size).
        keep_all_layers: False keeps only the last decoder layer's logits (validation).
        position_drop: the probability that a clip's matching reads by appearance alone, without the
            position encodings on queries and keys (``step_clip(free=True)``), drawn per clip from
            torch's generator; 0: never (the paper's).
        shown: ``(T,)`` bool, whether the target shows in each frame of the window (its ground truth is
            not empty): with it, only the clips that start right after a frame where it does not show
            may drop the positions (what a lost target's readout sees at inference); None: every clip.
    Returns: :class:`UnrollOutput`.
    """
    t = frames.shape[0]
    if not 1 <= num_memory < t:
        raise ValueError(f"num_memory must be in [1, {t - 1}], got {num_memory}")
    if memory_masks.ndim != 4 or memory_masks.shape[1] != num_memory or memory_masks.shape[-2:] != frames.shape[-2:]:
        raise ValueError(
            f"memory_masks must be (B, {num_memory}, H, W) for frames {tuple(frames.shape)}, "
            f"got {tuple(memory_masks.shape)}"
        )
    if shown is not None and tuple(shown.shape) != (t,):
        raise ValueError(f"shown must be ({t},) for frames {tuple(frames.shape)}, got {tuple(shown.shape)}")
    drops = position_drop > 0  # the free inputs are encoded only when some clip may read by appearance
    visible = None if shown is None else shown.tolist()  # read once, not one device sync per clip
    memory = model.encode_frames(frames[:num_memory], free=drops)
    bank = seed_bank(model, memory, memory_masks, capacity or model.bank_size)
    per_layer: list[list[Tensor]] = []
    sizes = []
    query = frames[num_memory:]
    for start, end in clip_spans(query.shape[0], clip_length):
        sizes.append(len(bank))
        clip = model.encode_frames(query[start:end], free=drops)
        free = drops and (visible is None or not visible[num_memory + start - 1])
        free = free and bool(torch.rand(()) < position_drop)
        out = step_clip(model, bank, clip, free=free)
        logits = out.logits if keep_all_layers else out.logits[-1:]
        if not per_layer:
            per_layer = [[] for _ in logits]
        for acc, x in zip(per_layer, logits, strict=True):
            acc.append(x)
    return UnrollOutput(layer_logits=[torch.cat(xs, dim=1) for xs in per_layer], memory_sizes=sizes)
