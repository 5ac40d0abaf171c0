"""Synthetic transformation videos: textured objects on cluttered, moving backgrounds that are cut,
peeled, shrunk, morphed, molded and occluded (the VOST phenomena), with exact masks.

Deterministic: ``SynthConfig.seed`` fixes every pixel (numpy ``default_rng``, no global RNG). Every
frame is a pure function of the frame index, so videos can be rendered lazily (``iter_video``), at
random access (``LazyVideo.render``), or in full (``make_video``).

    video = make_video(SynthConfig(length=48, num_objects=2, events=("cut",), seed=3))
    video.frames  # (T, H, W, 3) uint8 RGB;  video.masks  # (T, H, W) uint8 ids 0..K
    video.attributes  # one entry of attributes.json (see notes on the format)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from tamvt.data.synthetic.events import EVENT_TYPES, apply, fill, translation
from tamvt.data.synthetic.lost import LOST_EVENTS
from tamvt.data.synthetic.plan import LONG_FRAMES, SMALL_PCT, SynthConfig, VideoPlan, derive_seed, plan_video
from tamvt.data.synthetic.shapes import SPRITE_EXTENT


def render_frame(plan: VideoPlan, t: int, with_frame: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
    """Frame ``t``: ``(frame (H, W, 3) uint8 RGB or None, mask (H, W) uint8 ids)``.

    Objects are painted far to near; a distractor paints id 0, so nearer things win overlaps.
    """
    h, w = plan.config.size
    cam = plan.camera.matrix(t)
    frame = None
    if with_frame:
        m_bg = (cam @ translation(-plan.bg_offset))[:2]
        frame = cv2.warpAffine(plan.background, m_bg, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    mask = np.zeros((h, w), np.uint8)
    for track in plan.tracks:
        kind = plan.kinds[track.kind]
        pieces = track.pieces(t, kind.radii, kind.aspect, kind.outline)
        if not pieces:
            continue
        obj = cam @ track.pose(t)
        sprite = kind.sprite
        if with_frame and track.peel is not None and (u := track.peel.event.progress(t)) > 0.0:
            flesh = plan.flesh[track.peel.flesh]
            sprite = flesh if u >= 1.0 else cv2.addWeighted(sprite, 1.0 - u, flesh, u, 0.0)
        # Sprite pixel j covers unit coordinate (j + 0.5) * 2E / S - E; local px = unit * scale.
        half = track.scale(t) * SPRITE_EXTENT
        k = 2.0 * half / sprite.shape[0]  # local px per sprite px
        sprite_to_local = np.array([[k, 0.0, k / 2 - half], [0.0, k, k / 2 - half], [0.0, 0.0, 1.0]])
        for poly, piece in pieces:
            m = obj @ piece
            pts = apply(m, poly)
            fixed = fill(mask, pts, track.obj_id)
            if frame is None:
                continue
            x0, y0 = np.maximum(np.floor(pts.min(axis=0)).astype(int), 0)
            x1, y1 = np.minimum(np.ceil(pts.max(axis=0)).astype(int) + 1, (w, h))
            if x1 <= x0 or y1 <= y0:
                continue
            # The same integer outline shifted by whole pixels: exactly the pixels set in the mask.
            sel = np.zeros((y1 - y0, x1 - x0), np.uint8)
            cv2.fillPoly(sel, [fixed - np.array([16 * x0, 16 * y0], np.int32)], 1, cv2.LINE_8, shift=4)
            m_sprite = (translation(np.array([-x0, -y0], float)) @ m @ sprite_to_local)[:2]
            tex = cv2.warpAffine(
                sprite, m_sprite, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
            )
            cv2.copyTo(tex, sel, frame[y0:y1, x0:x1])  # writes into the view (same size and type)
    if frame is not None and plan.light[0] > 0:  # auto-exposure flicker
        amp, period, phase = plan.light
        frame = cv2.convertScaleAbs(frame, alpha=1.0 + amp * np.sin(2 * np.pi * t / period + phase))
    return frame, mask


def video_attributes(plan: VideoPlan, counts: np.ndarray) -> dict:
    """The attributes.json entry of one video from ``counts (T, K + 1)`` = pixels of each id per frame.

    Object areas are percentages of the frame; ``area_pct_mean`` / ``area_pct_min`` are over the frames
    where the object is visible (``frames_present``), ``area_pct_first`` is frame 0.
    """
    cfg = plan.config
    h, w = cfg.size
    pct = counts[:, 1:] * (100.0 / (h * w))
    kinds_of = [t.kind for t in plan.tracks]
    objects: dict[str, dict[str, Any]] = {}
    for track in sorted((t for t in plan.tracks if t.obj_id > 0), key=lambda t: t.obj_id):
        col = pct[:, track.obj_id - 1]
        present = col[col > 0]
        objects[str(track.obj_id)] = {
            "kind": plan.kinds[track.kind].name,
            "area_pct_mean": round(float(present.mean()), 4) if len(present) else 0.0,
            "area_pct_min": round(float(present.min()), 4) if len(present) else 0.0,
            "area_pct_first": round(float(col[0]), 4),
            "instances_of_kind": kinds_of.count(track.kind),
            "frames_present": int(len(present)),
        }
    tags = [e for e in EVENT_TYPES + LOST_EVENTS if any(ev.type == e for ev in plan.events)]
    if any(0 < o["area_pct_mean"] < SMALL_PCT for o in objects.values()):
        tags.append("small")
    if any(o["instances_of_kind"] >= 2 for o in objects.values()):
        tags.append("multi_instance")
    if cfg.length >= LONG_FRAMES:
        tags.append("long")
    return {
        "seed": cfg.seed,
        "length": cfg.length,
        "fps": cfg.fps,
        "size": list(cfg.size),
        "tags": tags,
        "events": [ev.as_dict() for ev in plan.events],
        "objects": objects,
    }


class LazyVideo:
    """A synthetic video rendered on demand. Iterating yields ``(frame (H, W, 3) uint8, mask (H, W) uint8)``
    one at a time (memory does not grow with the length); ``attributes()`` after iterating is free,
    before it renders the missing masks (no textures)."""

    def __init__(self, cfg: SynthConfig) -> None:
        self.config = cfg
        self.name = cfg.sequence_name
        self.plan = plan_video(cfg)
        self._counts = np.full((cfg.length, cfg.num_objects + 1), -1, np.int64)

    def __len__(self) -> int:
        return self.config.length

    def render(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame ``t`` (random access): ``(frame (H, W, 3) uint8 RGB, mask (H, W) uint8)``."""
        if not 0 <= t < len(self):
            raise IndexError(f"{self.name}: frame {t} out of range ({len(self)} frames)")
        frame, mask = render_frame(self.plan, t)
        assert frame is not None  # with_frame
        self._counts[t] = np.bincount(mask.ravel(), minlength=self.config.num_objects + 1)
        return frame, mask

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for t in range(len(self)):
            yield self.render(t)

    def attributes(self) -> dict:
        for t in np.flatnonzero(self._counts[:, 0] < 0):
            _, mask = render_frame(self.plan, int(t), with_frame=False)
            self._counts[t] = np.bincount(mask.ravel(), minlength=self.config.num_objects + 1)
        return video_attributes(self.plan, self._counts)


@dataclass(frozen=True)
class SyntheticVideo:
    """A fully rendered synthetic video: frames ``(T, H, W, 3)`` uint8 RGB, masks ``(T, H, W)`` uint8
    ids (0 = background, 1..K = targets), attributes = its attributes.json entry."""

    name: str
    config: SynthConfig
    frames: np.ndarray
    masks: np.ndarray
    attributes: dict


def iter_video(cfg: SynthConfig) -> LazyVideo:
    """The lazy variant of :func:`make_video`: ``for frame, mask in iter_video(cfg): ...``."""
    return LazyVideo(cfg)


def make_video(cfg: SynthConfig) -> SyntheticVideo:
    """Render the whole video in memory (use :func:`iter_video` for long / large videos)."""
    lazy = LazyVideo(cfg)
    h, w = cfg.size
    frames = np.empty((cfg.length, h, w, 3), np.uint8)
    masks = np.empty((cfg.length, h, w), np.uint8)
    for t, (frame, mask) in enumerate(lazy):
        frames[t], masks[t] = frame, mask
    return SyntheticVideo(lazy.name, cfg, frames, masks, lazy.attributes())


def stream(seed: int, cfg_template: SynthConfig | None = None) -> Iterator[SyntheticVideo]:
    """Endless training stream: item i is ``cfg_template`` (default ``SynthConfig()``) with seed
    ``derive_seed(seed, i)`` (with ``events="random"`` each item draws its own events)."""
    cfg_template = cfg_template or SynthConfig()
    i = 0
    while True:
        yield make_video(dataclasses.replace(cfg_template, seed=derive_seed(seed, i), name=f"stream-{i:06d}"))
        i += 1
