"""Periodic validation during training: run the online predictor on held-out videos, report J, F,
J&F and J_tr.

Videos are segmented by :class:`tamvt.inference.predictor.Predictor` — the inference users run, built on the
same clip step as the training unroll — from the ground truth of their first annotated frame (all
objects of that frame). Scores use the evaluation toolkit's metric functions on the annotated frames
after the reference, the last one excluded (DAVIS convention): J and F per object and frame,
J_tr over the last ``N - floor(0.75 N)`` of them (VOST); means over objects.

This is a monitoring number. For benchmark numbers run ``tamvt predict`` + ``tamvt eval``, which
follow each benchmark's exact protocol.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from tamvt.config import InferenceConfig
from tamvt.evaluation.metrics import bound_pix, boundary_f, j_tr_values, region_similarity
from tamvt.models.tamvt import TamVT


@dataclass(frozen=True)
class ValVideo:
    """One validation video.

    Attributes:
        name: for logs.
        source: what :meth:`Predictor.start` takes: frames ``(T, H, W, 3)`` uint8 or a VideoSequence.
        labels: annotated frame index -> ``(H, W)`` uint8 ids at the original size (255 = void).
    """

    name: str
    source: Any
    labels: Mapping[int, np.ndarray]

    @property
    def reference(self) -> int:
        return min(self.labels)


def synthetic_videos(
    suite: str, seed: int, num: int, size: tuple[int, int] | None = None, length: int | None = None
) -> list[ValVideo]:
    """``num`` fixed-seed videos of generator suite ``suite`` (the same on every call)."""
    from tamvt.data.synthetic import make_video, preset_suite

    out = []
    for cfg in preset_suite(suite, seed=seed, num=num):
        changes: dict[str, Any] = {k: v for k, v in (("size", size), ("length", length)) if v is not None}
        video = make_video(dataclasses.replace(cfg, **changes))
        out.append(ValVideo(video.name, video.frames, dict(enumerate(np.asarray(video.masks)))))
    return out


def dataset_videos(source: str, root: str, split: str, num: int) -> list[ValVideo]:
    """The first ``num`` sequences (0 = all) of a dataset split; frames stay on disk until used."""
    from tamvt.data.registry import read_dataset

    class _Labels(Mapping):  # masks read lazily, one at a time
        def __init__(self, seq: Any) -> None:
            self.seq = seq

        def __getitem__(self, i: int) -> np.ndarray:
            return self.seq.read_mask(i)

        def __iter__(self):
            return iter(self.seq.annotated)

        def __len__(self) -> int:
            return len(self.seq.annotated)

    return [ValVideo(seq.name, seq, _Labels(seq)) for seq in read_dataset(source, root, split)[: num or None]]


def score_video(labels: Mapping[int, np.ndarray], pred: Mapping[int, np.ndarray]) -> list[dict[str, float]]:
    """Per object of the reference frame: J, F, J&F and J_tr over the annotated frames after the
    reference, the last excluded (all of them when there are only two). Void (255) = background."""
    frames = sorted(labels)
    ref, rest = frames[0], frames[1:]
    evaluated = rest[:-1] if len(rest) > 1 else rest
    first = labels[ref]
    gts = {f: labels[f] for f in evaluated}  # read each (lazy) mask once
    bound = bound_pix(first.shape)
    out = []
    for obj in [int(i) for i in np.unique(first) if i not in (0, 255)]:
        j = np.array([region_similarity(gts[f] == obj, pred[f] == obj) for f in evaluated])
        fv = np.array([boundary_f(gts[f] == obj, pred[f] == obj, bound) for f in evaluated])
        jm = float(j.mean()) if j.size else math.nan
        fm = float(fv.mean()) if fv.size else math.nan
        out.append(
            {"J": jm, "F": fm, "J&F": (jm + fm) / 2, "J_tr": float(j_tr_values(j).mean()) if j.size else math.nan}
        )
    return out


@torch.no_grad()
def segment(model: TamVT, video: ValVideo, config: InferenceConfig, clip_length: int) -> dict[int, np.ndarray]:
    """Merged index masks of the annotated frames of ``video`` (the reference frame: its ground truth)."""
    from tamvt.inference.predictor import Predictor

    predictor = Predictor(model, config, clip_length=clip_length)
    session = predictor.start(video.source, keep_results=False)
    ref = video.reference
    ids = [int(i) for i in np.unique(video.labels[ref]) if i not in (0, 255)]
    pred = {ref: np.where(np.isin(video.labels[ref], ids), video.labels[ref], 0).astype(np.uint8)}
    if not ids:
        return pred
    predictor.add_index_mask(session, ref, video.labels[ref], objects=ids)
    wanted = set(video.labels)
    for idx, result in predictor.propagate(session):
        if idx in wanted and idx != ref:
            pred[idx] = result.mask
    return pred


def validate(model: TamVT, videos: Sequence[ValVideo], config: InferenceConfig, clip_length: int) -> dict[str, Any]:
    """Mean J / F / J&F / J_tr over all objects of ``videos``. ``model`` is put in eval mode (and its
    RTE table resampled if ``config.bank_size`` exceeds it): pass a copy, not the trained module."""
    per_object = []
    for video in videos:
        per_object += score_video(video.labels, segment(model, video, config, clip_length))
    if not per_object:
        return {"J": math.nan, "F": math.nan, "J&F": math.nan, "J_tr": math.nan, "objects": 0}
    means = {k: float(np.nanmean([o[k] for o in per_object])) for k in ("J", "F", "J&F", "J_tr")}
    return {**means, "objects": len(per_object)}
