"""Periodic validation during training: segment held-out videos clip by clip, report J, F, J&F, J_tr.

The videos are segmented with :func:`tamvt.train.unroll.unroll_window` under ``no_grad`` with one
ground-truth memory frame — i.e. the same clip step (:func:`tamvt.memory.step_clip`) and memory
rules as the online predictor — at the training resolution, all objects of the first frame at once
(merged by argmax over [background 0.5, objects]). Scores use the toolkit's metric functions:
J and F per object and frame over frames 1..T-2 (DAVIS: first and last excluded), J_tr over the
last ``N - floor(0.75 N)`` of them (VOST); means over objects.

This is a monitoring number. For benchmark numbers run ``tamvt predict`` + ``tamvt eval``, which
follow each benchmark's exact protocol (VOST scores annotated frames only, etc.).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from tamvt.evaluation.metrics import bound_pix, boundary_f, j_tr_values, region_similarity
from tamvt.preprocess import logits_to_probs, merge_masks, prepare_frame, resized_shape
from tamvt.train.unroll import unroll_window


@dataclass(frozen=True)
class ValVideo:
    """One validation video: ``frames (T, 3, H, W)`` normalised, ``labels (T, H, W)`` uint8 ids (255 void)."""

    name: str
    frames: torch.Tensor
    labels: np.ndarray

    @property
    def object_ids(self) -> list[int]:
        return [int(i) for i in np.unique(self.labels[0]) if i not in (0, 255)]


def synthetic_videos(suite: str, seed: int, num: int, size: tuple[int, int] | None = None,
                     length: int | None = None) -> list[ValVideo]:
    """``num`` fixed-seed videos of generator suite ``suite`` (the same on every call)."""
    from tamvt.data.synthetic import make_video, preset_suite
    from tamvt.data.transforms import normalize

    out = []
    for cfg in preset_suite(suite, seed=seed, num=num):
        changes = {k: v for k, v in (("size", size), ("length", length)) if v is not None}
        video = make_video(dataclasses.replace(cfg, **changes))
        out.append(ValVideo(video.name, normalize(video.frames), np.asarray(video.masks)))
    return out


def dataset_videos(source: str, root: str, split: str, num: int, short_side: int | None,
                   max_long_side: int) -> list[ValVideo]:
    """The annotated frames of the first ``num`` sequences (0 = all) of a dataset split, resized."""
    from PIL import Image

    from tamvt.data.registry import read_dataset

    seqs = read_dataset(source, root, split)
    out = []
    for seq in seqs[: num or None]:
        shape = resized_shape(seq.size, short_side, max_long_side)
        idx = list(seq.annotated)
        frames = torch.stack([prepare_frame(seq.read_frame(i), shape) for i in idx])
        labels = np.stack([np.asarray(Image.fromarray(seq.read_mask(i)).resize((shape[1], shape[0]), Image.NEAREST))
                           for i in idx])
        out.append(ValVideo(seq.name, frames, labels))
    return out


@torch.no_grad()
def segment_video(model: torch.nn.Module, video: ValVideo, clip_length: int, capacity: int | None,
                  device: torch.device, autocast: bool = False) -> np.ndarray:
    """Index masks ``(T, H, W)`` uint8 for the video (frame 0 = its ground truth)."""
    ids = video.object_ids
    t, _, h, w = video.frames.shape
    pred = np.zeros((t, h, w), np.uint8)
    pred[0] = np.where(np.isin(video.labels[0], ids), video.labels[0], 0)
    if not ids or t < 2:
        return pred
    first = torch.from_numpy(np.stack([video.labels[0] == i for i in ids])).float()[:, None]  # (K, 1, H, W)
    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if autocast and device.type == "cuda" else contextlib.nullcontext()
    with ctx:
        out = unroll_window(model, video.frames.to(device), first.to(device), 1, clip_length, capacity,
                            keep_all_layers=False)
    logits = out.layer_logits[-1].float().cpu()  # (K, T-1, h/4, w/4)
    for f in range(1, t):
        pred[f] = merge_masks(logits_to_probs(logits[:, f - 1], (h, w)), ids, "argmax")
    return pred


def score_video(labels: np.ndarray, pred: np.ndarray) -> list[dict[str, float]]:
    """Per object of frame 0: J, F, J&F over frames 1..T-2 and J_tr (void = background)."""
    frames = range(1, labels.shape[0] - 1) if labels.shape[0] > 2 else range(1, labels.shape[0])
    bound = bound_pix(labels.shape[1:])
    out = []
    for obj in [int(i) for i in np.unique(labels[0]) if i not in (0, 255)]:
        j = np.array([region_similarity(labels[f] == obj, pred[f] == obj) for f in frames])
        f_ = np.array([boundary_f(labels[f] == obj, pred[f] == obj, bound) for f in frames])
        jm = float(j.mean()) if j.size else math.nan
        fm = float(f_.mean()) if f_.size else math.nan
        jtr = float(j_tr_values(j).mean()) if j.size else math.nan
        out.append({"J": jm, "F": fm, "J&F": (jm + fm) / 2, "J_tr": jtr})
    return out


def validate(model: torch.nn.Module, videos: Sequence[ValVideo], clip_length: int, capacity: int | None,
             device: torch.device, autocast: bool = False) -> dict[str, Any]:
    """Mean J / F / J&F / J_tr over all objects of ``videos`` (model put in eval mode and restored)."""
    was_training = model.training
    model.eval()
    try:
        per_object = []
        for video in videos:
            pred = segment_video(model, video, clip_length, capacity, device, autocast)
            per_object += score_video(video.labels, pred)
    finally:
        model.train(was_training)
    if not per_object:
        return {"J": math.nan, "F": math.nan, "J&F": math.nan, "J_tr": math.nan, "objects": 0}
    means = {k: float(np.nanmean([o[k] for o in per_object])) for k in ("J", "F", "J&F", "J_tr")}
    return {**means, "objects": len(per_object)}
