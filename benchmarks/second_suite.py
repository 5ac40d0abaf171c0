"""A second synthetic evaluation suite, made independently of tamvt's training generator (never used for
training, so nothing is tuned to it): its own shape families, textures, backgrounds, camera and event
timing, written with numpy + cv2 only (``tamvt.data.synthetic`` is not imported).

    python benchmarks/second_suite.py OUT [--seed 20261204] [--num N] [--size 240x427] [--overwrite]

What it covers (24 videos by default; 6 of 144-170 frames, 18 of 40-90):

- shapes: stars, rings and C-rings, crescents, crosses, capital letters, closed Fourier curves;
- textures: plaid, Voronoi cells, marble, colour-noise gradients, checkers with per-cell colour
  jitter, zigzags; backgrounds from multi-octave filtered noise with soft blobs and twigs;
- objects **fully hidden for 5-20 frames**: behind a full-height bar that sweeps across the frame
  (``sweep``) or under a cover that comes down and leaves (``cover``);
- objects that **leave the frame and come back** (``exit``), on the same or an adjacent side;
- camera zoom and pan (``zoom``), motion blur (``blur``), a piece cut off that drifts away and stays
  the same object (``cut``), an object whose shape and texture change into others (``morph``), objects
  under 1 % of the frame (``small``), long videos (``long``: >= 144 frames).

Layout: ``OUT/JPEGImages/480p/<seq>/00000.jpg``, ``OUT/Annotations/480p/<seq>/00000.png`` (every frame
annotated, objects 1..K), ``OUT/ImageSets/2017/val.txt`` and ``OUT/attributes.json``:
``{"generator": "tamvt.benchmarks.second_suite", "format_version": 1, "videos": {name: {"seed",
"length", "fps", "size", "tags", "events": [{"type", "object", "start", "end"}], "objects": {id: {"kind",
"area_pct_mean", "area_pct_min", "frames_present", "instances_of_kind", "invisible": [[start, end), ...]}}}}}``
where ``invisible`` lists the runs of frames with no pixel of the object in the ground truth (hidden or
out of frame). The tags are the evaluation subsets (``tag:<t>`` rows of ``benchmarks/accuracy.py``).
Every pixel follows from ``--seed``; a scheduled full disappearance that the rendered masks do not show
(5-20 hidden frames for sweep / cover, >= 1 out-of-frame frame for exit) is drawn again from the next
sub-seed, so each video really has the events its tags name.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

GENERATOR, FORMAT_VERSION = "tamvt.benchmarks.second_suite", 1
DEFAULT_SEED = 20261204
SIZE = (240, 427)
S = 128  # sprite side (px): every shape and texture is drawn on an S x S sprite
SHAPES = ("star", "ring", "crescent", "cross", "letter", "fourier")
TEXTURES = ("plaid", "cells", "marble", "colour_noise", "jitter_checker", "zigzag")
HIDE_MIN, HIDE_MAX = 5, 20
LONG = 144
SMALL_PCT = 1.0

# (long?, events of object 1, small?): the 24 videos; the order is the suite's
SCENARIOS: tuple[tuple[bool, tuple[str, ...], bool], ...] = (
    (True, ("sweep", "cut", "zoom", "exit"), False),
    (True, ("sweep", "cut", "zoom", "cover"), True),
    (True, ("sweep", "cut", "zoom", "morph", "blur"), False),
    (True, ("sweep", "cut", "zoom", "exit"), True),
    (True, ("sweep", "cut", "zoom", "cover"), False),
    (True, ("sweep", "cut", "zoom", "morph", "blur"), True),
    (False, ("cover",), False),
    (False, ("exit",), False),
    (False, ("sweep",), False),
    (False, ("zoom", "blur"), False),
    (False, ("cut",), False),
    (False, ("morph",), False),
    (False, ("sweep",), True),
    (False, ("exit",), True),
    (False, ("cover", "zoom"), False),
    (False, ("exit", "blur"), False),
    (False, ("sweep", "cut"), False),
    (False, ("morph", "zoom"), False),
    (False, ("cover",), True),
    (False, ("exit",), False),
    (False, ("sweep", "blur"), False),
    (False, ("cut", "exit"), False),
    (False, (), True),
    (False, ("morph", "sweep"), False),
)


# ----------------------------------------------------------------------------- sprites


def _grid(n: int = S) -> tuple[np.ndarray, np.ndarray]:
    a = (np.arange(n, dtype=np.float32) + 0.5) / n * 2.0 - 1.0
    return np.meshgrid(a, a)


def shape_mask(kind: str, rng: np.random.Generator) -> np.ndarray:
    """A binary shape ``(S, S)`` uint8 inside the sprite's central 80 %."""
    m = np.zeros((S, S), np.uint8)
    c, r = S / 2.0, 0.4 * S
    if kind == "star":
        n = int(rng.integers(4, 9))
        inner = rng.uniform(0.35, 0.65)
        ang = rng.uniform(0, np.pi) + np.arange(2 * n) * np.pi / n
        rad = np.where(np.arange(2 * n) % 2 == 0, r, r * inner)
        pts = np.stack([c + rad * np.cos(ang), c + rad * np.sin(ang)], 1)
        cv2.fillPoly(m, [np.round(pts * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
    elif kind == "ring":
        cv2.circle(m, (int(c), int(c)), int(r), 1, -1)
        hole = rng.uniform(0.35, 0.6) * r
        off = rng.uniform(-0.15, 0.15, 2) * r
        cv2.circle(m, (int(c + off[0]), int(c + off[1])), int(hole), 0, -1)
        if rng.random() < 0.5:  # a C: a gap through the ring
            a = rng.uniform(0, 2 * np.pi)
            d = np.array([np.cos(a), np.sin(a)])
            p = np.array([c, c]) + d * r * 0.75
            cv2.line(m, (int(c), int(c)), (int(p[0] + d[0] * r), int(p[1] + d[1] * r)), 0, int(0.25 * r))
    elif kind == "crescent":
        cv2.circle(m, (int(c), int(c)), int(r), 1, -1)
        a = rng.uniform(0, 2 * np.pi)
        off = rng.uniform(0.35, 0.6) * r
        cv2.circle(m, (int(c + off * np.cos(a)), int(c + off * np.sin(a))), int(rng.uniform(0.75, 0.95) * r), 0, -1)
    elif kind == "cross":
        w1, w2 = rng.uniform(0.2, 0.45, 2) * r
        rot = cv2.getRotationMatrix2D((c, c), float(rng.uniform(0, 90)), 1.0)
        cv2.rectangle(m, (int(c - r), int(c - w1)), (int(c + r), int(c + w1)), 1, -1)
        cv2.rectangle(m, (int(c - w2), int(c - r)), (int(c + w2), int(c + r)), 1, -1)
        m = cv2.warpAffine(m, rot, (S, S), flags=cv2.INTER_NEAREST)
    elif kind == "letter":
        ch = str(rng.choice(list("AEFHKMRSTWXZ")))
        font = int(rng.choice([cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_TRIPLEX]))
        big = np.zeros((200, 200), np.uint8)
        cv2.putText(big, ch, (30, 170), font, 5.5, 1, int(rng.integers(14, 24)), cv2.LINE_AA)
        ys, xs = np.nonzero(big)
        crop = big[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        k = 0.8 * S / max(crop.shape)
        crop = cv2.resize(crop, (max(1, int(crop.shape[1] * k)), max(1, int(crop.shape[0] * k))))
        y0, x0 = (S - crop.shape[0]) // 2, (S - crop.shape[1]) // 2
        m[y0 : y0 + crop.shape[0], x0 : x0 + crop.shape[1]] = crop
    elif kind == "fourier":  # a closed curve x(s), y(s) from a few random harmonics (not star-shaped)
        s = np.linspace(0, 2 * np.pi, 400, endpoint=False)
        x, y = np.cos(s), np.sin(s)
        for k in range(2, 6):
            a = rng.normal(0, 0.35 / k, 4)
            x = x + a[0] * np.cos(k * s) + a[1] * np.sin(k * s)
            y = y + a[2] * np.cos(k * s) + a[3] * np.sin(k * s)
        pts = np.stack([x, y], 1)
        pts = pts - pts.mean(0)
        pts = c + pts / np.abs(pts).max() * r
        cv2.fillPoly(m, [np.round(pts * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
    else:
        raise ValueError(f"unknown shape {kind!r}")
    if m.sum() < 0.04 * S * S:  # a degenerate draw: fall back to a fat star
        return shape_mask("star", rng)
    return m


def _colours(rng: np.random.Generator, n: int, sat: tuple[float, float] = (0.4, 1.0)) -> np.ndarray:
    hsv = np.stack([rng.uniform(0, 180, n), rng.uniform(*sat, n) * 255, rng.uniform(0.3, 1.0, n) * 255], 1)
    return cv2.cvtColor(hsv.astype(np.uint8)[None], cv2.COLOR_HSV2RGB)[0].astype(np.float32)


def _noise(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """Smooth noise in 0..1 of ``shape`` from a ``cells``-wide random grid."""
    h, w = shape
    g = rng.random((max(2, cells * h // max(h, w) + 2), cells + 2)).astype(np.float32)
    n = cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC)
    return (n - n.min()) / max(float(n.max() - n.min()), 1e-6)


def texture(kind: str, rng: np.random.Generator) -> np.ndarray:
    """An RGB sprite ``(S, S, 3)`` float32 0..255."""
    x, y = _grid()
    col = _colours(rng, 3)
    if kind == "plaid":
        a1, a2 = rng.uniform(0, np.pi, 2)
        f1, f2 = rng.uniform(2, 6, 2)
        g1 = 0.5 + 0.5 * np.sin(np.pi * f1 * (x * np.cos(a1) + y * np.sin(a1)))
        g2 = 0.5 + 0.5 * np.sin(np.pi * f2 * (x * np.cos(a2) + y * np.sin(a2)))
        img = col[0] * (1 - g1[..., None]) + col[1] * g1[..., None]
        img = img * (1 - 0.5 * g2[..., None]) + col[2] * 0.5 * g2[..., None]
    elif kind == "cells":
        k = int(rng.integers(8, 25))
        pts = rng.uniform(-1, 1, (k, 2)).astype(np.float32)
        d = (x[..., None] - pts[:, 0]) ** 2 + (y[..., None] - pts[:, 1]) ** 2
        order = np.sort(d, axis=-1)
        idx = np.argmin(d, axis=-1)
        cell = col[rng.integers(0, 2, k)] + rng.normal(0, 25, (k, 3))
        img = cell[idx]
        edge = np.clip((np.sqrt(order[..., 1]) - np.sqrt(order[..., 0])) * 20, 0, 1)
        img = img * (0.45 + 0.55 * edge[..., None])
    elif kind == "marble":
        n = _noise(rng, (S, S), 4)
        a = rng.uniform(0, np.pi)
        v = 0.5 + 0.5 * np.sin(rng.uniform(3, 8) * (x * np.cos(a) + y * np.sin(a)) + rng.uniform(4, 9) * n)
        img = col[0] * (1 - v[..., None] ** 3) + col[1] * v[..., None] ** 3
    elif kind == "colour_noise":
        img = np.stack([_noise(rng, (S, S), int(rng.integers(2, 6))) for _ in range(3)], -1)
        img = col[0] * 0.6 + (img - 0.5) * rng.uniform(120, 220)
    elif kind == "jitter_checker":
        n = int(rng.integers(3, 7))
        i, j = np.floor((x + 1) / 2 * n).astype(int), np.floor((y + 1) / 2 * n).astype(int)
        jit = rng.normal(0, 30, (n + 1, n + 1, 3))
        img = np.where(((i + j) % 2 == 0)[..., None], col[0], col[1]) + jit[i, j]
    elif kind == "zigzag":
        f = rng.uniform(3, 7)
        tri = np.abs(((x * f * 1.5) % 2) - 1)
        v = ((y * f + tri) % 1.0) < 0.5
        img = np.where(v[..., None], col[0], col[2])
    else:
        raise ValueError(f"unknown texture {kind!r}")
    img = img * (1.0 - 0.25 * (x**2 + y**2))[..., None]  # a darker rim
    return np.clip(img, 0, 255).astype(np.float32)


def background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A natural-ish scene ``(h, w, 3)`` uint8: multi-octave filtered noise through a muted colour map,
    soft blobs and thin twigs."""
    field = np.zeros((h, w), np.float32)
    for octave, amp in ((3, 1.0), (7, 0.5), (16, 0.25), (40, 0.12)):
        field += amp * _noise(rng, (h, w), octave)
    field = (field - field.min()) / max(float(field.max() - field.min()), 1e-6)
    cols = _colours(rng, 4, (0.1, 0.55))
    x = field * 3
    i = np.minimum(x.astype(int), 2)
    t = (x - i)[..., None]
    img = cols[i] * (1 - t) + cols[i + 1] * t
    scale = np.sqrt(h * w)
    for _ in range(int(rng.integers(6, 14))):  # soft blobs
        layer = np.zeros((h, w), np.float32)
        ax = tuple(int(v) for v in rng.uniform(0.03, 0.12, 2) * scale)
        cv2.ellipse(layer, (int(rng.uniform(0, w)), int(rng.uniform(0, h))), ax, rng.uniform(0, 180), 0, 360, 1.0, -1)
        layer = cv2.GaussianBlur(layer, (0, 0), rng.uniform(2, 8))[..., None]
        img = img * (1 - 0.7 * layer) + _colours(rng, 1)[0] * 0.7 * layer
    for _ in range(int(rng.integers(5, 15))):  # twigs
        p = rng.uniform(0, 1, 2) * (w, h)
        q = p + rng.normal(0, 0.15, 2) * scale
        c = tuple(float(v) for v in _colours(rng, 1, (0.0, 0.4))[0] * 0.5)
        cv2.line(img, tuple(int(v) for v in p), tuple(int(v) for v in q), c, int(rng.integers(1, 4)), cv2.LINE_AA)
    img += rng.normal(0, 4, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- plan


@dataclass
class Obj:
    """One object: its sprite(s), per-frame world pose, and its cut / morph if any."""

    oid: int
    kind: str
    mask: np.ndarray  # (S, S) uint8
    tex: np.ndarray  # (S, S, 3) float32
    pos: np.ndarray  # (T, 2) world x, y of the sprite centre
    angle: np.ndarray  # (T,) degrees
    scale: float  # image px per sprite px
    depth: float
    cut: dict | None = None  # {"t", "normal", "offset" (T, 2)}
    morph: dict | None = None  # {"t0", "t1", "sdf_a", "sdf_b", "tex_b"}

    def pieces(self, t: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """``(mask float32, texture, extra world offset)`` of each visible piece at frame ``t``."""
        mask, tex = self.mask.astype(np.float32), self.tex
        if self.morph is not None and t >= self.morph["t0"]:
            u = min(1.0, (t - self.morph["t0"]) / max(1, self.morph["t1"] - self.morph["t0"]))
            sdf = (1 - u) * self.morph["sdf_a"] + u * self.morph["sdf_b"]
            mask = (sdf < 0).astype(np.float32)
            tex = (1 - u) * self.tex + u * self.morph["tex_b"]
        if self.cut is None or t < self.cut["t"]:
            return [(mask, tex, np.zeros(2))]
        x, y = _grid()
        d = x * self.cut["normal"][0] + y * self.cut["normal"][1]  # a thin gap along the cut
        return [(mask * (d < -0.03), tex, np.zeros(2)), (mask * (d > 0.03), tex, self.cut["offset"][t])]


@dataclass
class Occluder:
    """A foreground occluder drawn in image space: ``boxes[t] = (x0, y0, x1, y1)`` or None."""

    kind: str
    boxes: list
    tex: np.ndarray
    event: dict = field(default_factory=dict)


def _sdf(mask: np.ndarray) -> np.ndarray:
    inside = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)
    outside = cv2.distanceTransform((1 - mask).astype(np.uint8), cv2.DIST_L2, 3)
    return (outside - inside).astype(np.float32)


def _smooth_path(keys: list[tuple[float, float, float]], length: int, sigma: float) -> np.ndarray:
    """``(length, 2)`` positions: linear through keyframes ``(t, x, y)``, then Gaussian-smoothed."""
    ts, xs, ys = (np.array(v, np.float64) for v in zip(*sorted(keys), strict=True))
    t = np.arange(length)
    path = np.stack([np.interp(t, ts, xs), np.interp(t, ts, ys)], 1)
    if sigma <= 0:
        return path
    r = int(3 * sigma)
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    pad = np.pad(path, ((r, r), (0, 0)), mode="edge")
    return np.stack([np.convolve(pad[:, i], k, mode="valid") for i in range(2)], 1)


@dataclass
class Video:
    name: str
    seed: int
    length: int
    size: tuple[int, int]
    tags: list[str]
    events: list[dict]
    objects: list[Obj]
    occluders: list[Occluder]
    bg: np.ndarray
    bg_off: np.ndarray
    zoom: np.ndarray  # (T,)
    pan: np.ndarray  # (T, 2)
    zoom_centre: np.ndarray
    blur: bool
    counts: np.ndarray | None = None  # (T, K + 1) pixels of each id per frame, once measured

    def camera(self, t: int) -> np.ndarray:
        """2x3 affine world -> image at frame ``t``."""
        z, c = float(self.zoom[t]), self.zoom_centre
        return np.array([[z, 0, c[0] - z * c[0] + self.pan[t, 0]], [0, z, c[1] - z * c[1] + self.pan[t, 1]]])

    def render(self, t: int, with_frame: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
        """``(frame (H, W, 3) uint8 RGB or None, label (H, W) uint8)``."""
        h, w = self.size
        cam = self.camera(t)
        frame = None
        if with_frame:
            to_bg = _compose(cam, np.array([[1.0, 0, -self.bg_off[0]], [0, 1, -self.bg_off[1]]]))
            frame = cv2.warpAffine(self.bg, to_bg, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            frame = frame.astype(np.float32)
        label = np.zeros((h, w), np.uint8)
        for obj in sorted(self.objects, key=lambda o: o.depth):
            for mask, tex, extra in obj.pieces(t):
                a = _compose(cam, _pose(obj.pos[t] + extra, obj.angle[t], obj.scale))
                alpha = cv2.warpAffine(mask, a, (w, h), flags=cv2.INTER_LINEAR)
                label[alpha >= 0.5] = obj.oid
                if frame is None:
                    continue
                rgb = cv2.warpAffine(tex, a, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
                if self.blur and 0 < t < self.length - 1:
                    v = (obj.pos[t + 1] - obj.pos[t - 1]) / 2 * float(self.zoom[t])
                    alpha, rgb = _motion_blur(alpha, rgb, v)
                frame = frame * (1 - alpha[..., None]) + rgb * alpha[..., None]
        for occ in self.occluders:
            box = occ.boxes[t]
            if box is None:
                continue
            x0, y0, x1, y1 = (int(round(v)) for v in box)
            x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
            if x1 <= x0 or y1 <= y0:
                continue
            label[y0:y1, x0:x1] = 0
            if frame is not None:
                frame[y0:y1, x0:x1] = cv2.resize(occ.tex, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
        if frame is not None:
            rng = np.random.default_rng([self.seed, t])
            frame = np.clip(frame + rng.normal(0, 3, frame.shape), 0, 255).astype(np.uint8)
        return frame, label


def _pose(pos: np.ndarray, angle: float, scale: float) -> np.ndarray:
    """2x3 affine sprite px -> world: scale and rotate about the sprite centre, centre at ``pos``."""
    m = cv2.getRotationMatrix2D((S / 2, S / 2), angle, scale)
    m[:, 2] += pos - S / 2
    return m


def _compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """2x3 affines: ``a`` after ``b``."""
    return (np.vstack([a, [0, 0, 1]]) @ np.vstack([b, [0, 0, 1]]))[:2]


def _motion_blur(alpha: np.ndarray, rgb: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = int(round(float(np.hypot(*v)) * 0.8))
    if n < 3:
        return alpha, rgb
    k = np.zeros((2 * n + 1, 2 * n + 1), np.float32)
    d = v / max(float(np.hypot(*v)), 1e-6)
    cv2.line(k, (int(n - d[0] * n / 2), int(n - d[1] * n / 2)), (int(n + d[0] * n / 2), int(n + d[1] * n / 2)), 1.0)
    k /= k.sum()
    pre = cv2.filter2D(rgb * alpha[..., None], -1, k)
    a = cv2.filter2D(alpha, -1, k)
    return a, pre / np.maximum(a, 1e-4)[..., None]


def plan_video(index: int, seed: int, size: tuple[int, int] = SIZE) -> Video:
    """Video ``index`` of the suite (``SCENARIOS[index % 24]``); redrawn from the next sub-seed until its
    scheduled disappearances show in the masks (at most 40 draws)."""
    for attempt in range(40):
        video = _draw(index, seed, attempt, size)
        if _check(video):
            return video
    raise RuntimeError(f"second suite: video {index} (seed {seed}) never showed its events")


def _draw(index: int, seed: int, attempt: int, size: tuple[int, int]) -> Video:
    long, events1, small = SCENARIOS[index % len(SCENARIOS)]
    rng = np.random.default_rng([seed, index, attempt])
    h, w = size
    k = h / 240.0  # pixel quantities scale with the frame
    length = int(rng.integers(144, 171)) if long else int(rng.integers(40, 91))
    n_obj = 1 + int(rng.integers(0, 3))
    tags = sorted(set(events1))
    events: list[dict] = []
    zoom, pan = np.ones(length), np.zeros((length, 2))
    if "zoom" in events1:
        t0 = int(rng.integers(length // 6, length // 2))
        t1 = min(length - 1, t0 + int(rng.integers(15, 40)))
        peak = rng.choice([rng.uniform(1.35, 1.7), rng.uniform(0.7, 0.8)])
        ramp = np.clip((np.arange(length) - t0) / max(1, t1 - t0), 0, 1)
        ramp = 0.5 - 0.5 * np.cos(np.pi * ramp)
        back = np.clip((np.arange(length) - t1 - 10) / 25.0, 0, 1) if rng.random() < 0.5 else 0
        zoom = 1 + (peak - 1) * ramp * (1 - back)
        pan = np.stack([np.cumsum(rng.normal(0, 0.6 * k, length)), np.cumsum(rng.normal(0, 0.4 * k, length))], 1)
        events.append({"type": "zoom", "object": 0, "start": t0, "end": t1})
    centre = np.array([rng.uniform(0.35, 0.65) * w, rng.uniform(0.35, 0.65) * h])
    bh, bw = int(h * 1.8), int(w * 1.8)
    bg = background(rng, bh, bw)
    bg_off = np.array([0.4 * w, 0.4 * h])

    objects: list[Obj] = []
    occluders: list[Occluder] = []
    for oid in range(1, n_obj + 1):
        kind = str(rng.choice(SHAPES))
        mask = shape_mask(kind, rng)
        tex = texture(str(rng.choice(TEXTURES)), rng)
        is_small = small and oid == n_obj
        area = (rng.uniform(0.25, 0.8) if is_small else rng.uniform(1.5, 7.0)) / 100 * h * w
        scale = float(np.sqrt(area / mask.sum()))
        radius = 0.45 * S * scale
        speed = (5.0 if "blur" in events1 and oid == 1 else 1.8) * k
        keys, t = [], 0
        p = np.array([rng.uniform(radius, w - radius), rng.uniform(radius, h - radius)])
        while t < length + 20:
            keys.append((t, *p))
            step = int(rng.integers(10, 30))
            t += step
            q = np.array([rng.uniform(radius, w - radius), rng.uniform(radius, h - radius)])
            d = q - p
            p = p + d * min(1.0, speed * step / max(float(np.hypot(*d)), 1e-6))
        obj = Obj(oid, kind, mask, tex, np.zeros((length, 2)), np.zeros(length), scale, rng.uniform(0, 1))
        spin = rng.uniform(-1.5, 1.5)
        obj.angle = rng.uniform(0, 360) + spin * np.arange(length)
        if oid == 1:
            keys = _schedule(obj, events1, keys, length, radius, rng, (h, w), events, occluders)
        obj.pos = _smooth_path(keys, length, 3.0)
        objects.append(obj)
    obj1 = objects[0]
    if "cut" in events1:
        t_cut = int(rng.integers(length // 5, length // 2))
        a = rng.uniform(0, 2 * np.pi)
        normal = np.array([np.cos(a), np.sin(a)])
        drift = np.zeros((length, 2))
        vel = rng.uniform(1.0, 2.5) * k * normal
        drift[t_cut:] = vel * np.arange(1, length - t_cut + 1)[:, None]
        drift[t_cut:] += np.array([0, 0.04 * k]) * np.arange(1, length - t_cut + 1)[:, None] ** 2 / 2
        obj1.cut = {"t": t_cut, "normal": normal, "offset": drift}
        events.append({"type": "cut", "object": 1, "start": t_cut, "end": length})
    if "morph" in events1:
        t0 = int(rng.integers(length // 5, length // 2))
        t1 = t0 + int(rng.integers(8, 20))
        other = shape_mask(str(rng.choice([s for s in SHAPES if s != obj1.kind])), rng)
        obj1.morph = {
            "t0": t0,
            "t1": t1,
            "sdf_a": _sdf(obj1.mask),
            "sdf_b": _sdf(other),
            "tex_b": texture(str(rng.choice(TEXTURES)), rng),
        }
        events.append({"type": "morph", "object": 1, "start": t0, "end": t1})
    if "blur" in events1:
        events.append({"type": "blur", "object": 0, "start": 0, "end": length})
    if small:
        tags.append("small")
    if long:
        tags.append("long")
    return Video(
        f"s2-{index:03d}",
        int(rng.integers(2**31)),
        length,
        (h, w),
        sorted(set(tags)),
        sorted(events, key=lambda e: (e["start"], e["type"])),
        objects,
        occluders,
        bg,
        bg_off,
        zoom,
        pan,
        centre,
        "blur" in events1,
    )


def _schedule(obj, events1, keys, length, radius, rng, size, events, occluders) -> list:
    """Object 1's disappearances: rewrites its keyframes around them and adds the occluders."""
    h, w = size
    k = h / 240.0
    slots = [e for e in events1 if e in ("sweep", "cover", "exit")]
    if not slots:
        return keys
    # spread the disappearances over the video, one slot each
    bounds = np.linspace(0.12 * length, 0.85 * length, len(slots) + 1)
    for ev, lo, hi in zip(slots, bounds[:-1], bounds[1:], strict=True):
        hide = int(rng.integers(HIDE_MIN + 1, HIDE_MAX - 3))
        t0 = int(rng.uniform(lo, max(lo + 1, hi - hide - 8)))
        t1 = t0 + hide
        keys = [kf for kf in keys if not (t0 - 14 <= kf[0] <= t1 + 14)]
        if ev == "exit":
            side = int(rng.integers(4))
            y = rng.uniform(radius, h - radius)
            x = rng.uniform(radius, w - radius)
            out = 2.2 * radius + 6 * k
            pts = {0: (-out, y), 1: (w + out, y), 2: (x, -out), 3: (x, h + out)}
            back = side if rng.random() < 0.5 else (side + 1) % 4
            a, b = np.array(pts[side]), np.array(pts[back])
            inner_a = np.clip(a, radius, (w - radius, h - radius))
            inner_b = np.clip(b + rng.normal(0, 0.2, 2) * (w, h), radius, (w - radius, h - radius))
            keys += [(t0 - 12, *inner_a), (t0 + 1, *a)]
            if back != side:  # round the corner outside the frame
                corner = np.array([a[0] if side in (0, 1) else b[0], a[1] if side in (2, 3) else b[1]])
                keys.append(((t0 + t1) / 2, *corner))
            keys += [(t1 - 1, *b), (t1 + 12, *inner_b)]
            events.append({"type": "exit", "object": 1, "start": t0, "end": t1})
        elif ev == "sweep":
            p = np.array([rng.uniform(radius, w - radius), rng.uniform(radius, h - radius)])
            u = rng.uniform(-1.0, 1.0) * k
            v = rng.uniform(7, 12) * k * rng.choice([-1, 1])
            extent = 2 * radius
            width = extent + hide * abs(v - u) + 4 * k
            mid = (t0 + t1) / 2
            keys += [(t - 0.0, p[0] + u * (t - mid), p[1]) for t in (t0 - 12, mid, t1 + 12)]
            boxes = []
            for t in range(length):
                cx = p[0] + v * (t - mid)
                boxes.append((cx - width / 2, -1, cx + width / 2, h + 1) if -width < cx < w + width else None)
            occluders.append(Occluder("sweep", boxes, _occluder_texture(rng, int(width), h)))
            events.append({"type": "sweep", "object": 1, "start": t0, "end": t1})
        elif ev == "cover":
            p = np.array([rng.uniform(radius, w - radius), rng.uniform(radius, h - radius)])
            drift = rng.normal(0, 0.6, 2) * k
            mid = (t0 + t1) / 2
            keys += [(t, *(p + drift * (t - mid))) for t in (t0 - 12, mid, t1 + 12)]
            half = radius * 1.35 + abs(drift).max() * hide / 2 + 3 * k
            come, leave = 5, 6
            boxes = []
            for t in range(length):
                if t0 - come <= t < t0:
                    dy = (t0 - t) / come * (p[1] + half + 2)
                    c = p + drift * (t0 - mid) - (0, dy)
                elif t0 <= t <= t1:
                    c = p
                elif t1 < t <= t1 + leave:
                    c = p + np.array([(t - t1) / leave * (w / 2 + 2 * half) * (1 if p[0] < w / 2 else -1), 0])
                else:
                    boxes.append(None)
                    continue
                boxes.append((c[0] - half, c[1] - half, c[0] + half, c[1] + half))
            occluders.append(Occluder("cover", boxes, _occluder_texture(rng, int(2 * half), int(2 * half))))
            events.append({"type": "cover", "object": 1, "start": t0, "end": t1})
    return keys


def _occluder_texture(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Wood-like grain, or a painted board with noise: ``(h, w, 3)`` float32."""
    w, h = max(w, 2), max(h, 2)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    col = _colours(rng, 2, (0.2, 0.8))
    n = _noise(rng, (h, w), 5)
    grain = 0.5 + 0.5 * np.sin(x / max(w, 1) * rng.uniform(10, 30) + 5 * n)
    img = col[0] * grain[..., None] + col[1] * (1 - grain[..., None])
    return np.clip(img, 0, 255).astype(np.float32)


def _runs(flags: np.ndarray) -> list[list[int]]:
    """``[[start, end), ...]`` of the True runs of ``flags``."""
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    d = np.diff(padded)
    return [[int(a), int(b)] for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True)]


def _counts(video: Video) -> np.ndarray:
    """``(T, K + 1)`` pixels of each id per frame (masks only, no pixels drawn)."""
    k = len(video.objects)
    return np.stack(
        [
            np.bincount(video.render(t, with_frame=False)[1].ravel(), minlength=k + 1)[: k + 1]
            for t in range(video.length)
        ]
    )


def _check(video: Video) -> bool:
    """Do the masks show every scheduled disappearance of object 1 (sweep / cover: a hidden run of 5..20
    frames overlapping the event; exit: >= 1 frame gone), with object 1 visible on frame 0 and at the end,
    and every other object visible on frame 0?"""
    counts = _counts(video)
    if (counts[0, 1:] == 0).any() or counts[-1, 1] == 0:
        return False
    runs = _runs(counts[:, 1] == 0)
    for ev in video.events:
        if ev["type"] not in ("sweep", "cover", "exit"):
            continue
        hit = [r for r in runs if r[0] < ev["end"] + 3 and r[1] > ev["start"] - 3]
        if len(hit) != 1:
            return False
        n = hit[0][1] - hit[0][0]
        if ev["type"] != "exit" and not HIDE_MIN <= n <= HIDE_MAX:
            return False
        if ev["type"] == "exit" and not 1 <= n <= 30:
            return False
        ev["start"], ev["end"] = hit[0]
    video.counts = counts
    return True


def attributes(video: Video) -> dict:
    """The attributes.json entry of ``video`` (see the module docstring)."""
    counts = video.counts if video.counts is not None else _counts(video)
    h, w = video.size
    objects = {}
    for obj in video.objects:
        col = counts[:, obj.oid] * (100.0 / (h * w))
        present = col[col > 0]
        objects[str(obj.oid)] = {
            "kind": obj.kind,
            "area_pct_mean": round(float(present.mean()), 4) if len(present) else 0.0,
            "area_pct_min": round(float(present.min()), 4) if len(present) else 0.0,
            "frames_present": int(len(present)),
            "instances_of_kind": 1,
            "invisible": _runs(col == 0),
        }
    tags = set(video.tags)
    if any(0 < o["area_pct_mean"] < SMALL_PCT for o in objects.values()):
        tags.add("small")
    else:
        tags.discard("small")
    if any(o["invisible"] for o in objects.values()):
        tags.add("disappears")
    return {
        "seed": video.seed,
        "length": video.length,
        "fps": 24,
        "size": list(video.size),
        "tags": sorted(tags),
        "events": video.events,
        "objects": objects,
    }


def write_suite(
    out: str | Path,
    seed: int = DEFAULT_SEED,
    num: int | None = None,
    size: tuple[int, int] = SIZE,
    overwrite: bool = False,
    quality: int = 90,
) -> dict:
    """Render the suite into ``out`` (see the module docstring); returns the attributes.json content.

    Each video is written under ``out/.tmp-<name>`` and renamed into place when complete; the split file
    and attributes.json come last, so an interrupted run never looks complete."""
    from tamvt.atomic import write_text_atomic
    from tamvt.data.palette import write_index_png
    from tamvt.errors import InputError

    out = Path(out)
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise InputError(out, "folder is not empty; pass --overwrite to replace the suite in it")
        for child in out.iterdir():
            if child.name in ("JPEGImages", "Annotations", "ImageSets", "attributes.json") or child.name.startswith(
                ".tmp-"
            ):
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    out.mkdir(parents=True, exist_ok=True)
    count = len(SCENARIOS) if num is None else int(num)
    videos = {}
    for i in range(count):
        video = plan_video(i, seed, size)
        tmp = out / f".tmp-{video.name}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            for sub in ("JPEGImages", "Annotations"):
                (tmp / sub).mkdir(parents=True)
            for t in range(video.length):
                frame, label = video.render(t)
                assert frame is not None
                jpg = tmp / "JPEGImages" / f"{t:05d}.jpg"
                if not cv2.imwrite(str(jpg), frame[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality]):
                    raise InputError(jpg, "cannot write JPEG")
                write_index_png(tmp / "Annotations" / f"{t:05d}.png", label)
            for sub in ("JPEGImages", "Annotations"):
                (out / sub / "480p").mkdir(parents=True, exist_ok=True)
                shutil.rmtree(out / sub / "480p" / video.name, ignore_errors=True)
                os.replace(tmp / sub, out / sub / "480p" / video.name)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        videos[video.name] = attributes(video)
    listing = "".join(f"{n}\n" for n in videos)
    write_text_atomic(out / "ImageSets" / "2017" / "val.txt", listing)
    data = {"generator": GENERATOR, "format_version": FORMAT_VERSION, "seed": seed, "videos": videos}
    write_text_atomic(out / "attributes.json", json.dumps(data, indent=1) + "\n")
    return data


def load_suite_attributes(root: str | Path) -> dict | None:
    """``root/attributes.json`` when this generator wrote it, else None."""
    path = Path(root) / "attributes.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return data if isinstance(data, dict) and data.get("generator") == GENERATOR else None


def parse_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size wants HxW, e.g. 240x427; got {text!r}") from None
    if h < 48 or w < 48:
        raise argparse.ArgumentTypeError(f"--size must be at least 48x48; got {text!r}")
    return h, w


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--num", type=int, default=None, help="first N videos only")
    parser.add_argument("--size", type=parse_size, default=SIZE, help="HxW (default 240x427)")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    from tamvt.errors import TamvtError

    try:
        data = write_suite(args.out, args.seed, args.num, args.size, args.overwrite)
    except TamvtError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    frames = sum(v["length"] for v in data["videos"].values())
    print(f"{args.out}: {len(data['videos'])} videos, {frames} frames (seed {args.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
