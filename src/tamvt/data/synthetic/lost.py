"""Lost-and-found events: a target fully hidden for a while (``hide``), leaving the frame and coming back
(``exit``), and still look-alikes of it where it was or near its path (``decoy``).

They are drawn after everything else of a video, from a generator of their own (seeded by the video's
seed and ``LOST_STREAM``): a video without them is drawn exactly as before, and a video with them is the
same video with one target's path changed around the event and a few objects added.

- ``hide``: a cover (in front of everything) comes in, sits on the target and leaves; the target may
  move under it and re-appear elsewhere. Or the target goes behind a larger still board (in front of the
  targets, behind the front distractors) and comes out, on the side it went in or another one.
- ``exit``: the target leaves the frame across one edge and comes back across the same edge or an
  adjacent one.
- ``decoy``: a still (barely moving) object of the target's shape family and texture (its very kind, or
  its texture on a new outline of its shape family), behind the targets: where the target was just before
  it went away, or near its path; there all video, or, under a cover, from the frame the target goes away.

An event's ``start``..``end`` (inclusive) are the frames where the target has no pixel, measured on masks
painted as the renderer paints them, with only the target and what the event puts in front of it (other
objects may hide it longer). A draw whose measured frames miss what the event promises (one run of
``HIDE_FRAMES`` hidden frames, or 2-20 out of the frame; the target seen before and after) is
drawn again, at most ``TRIES`` times; then the event is left out. A decoy event spans the frames the
decoys are there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from tamvt.data.synthetic.events import Camera, Detour, Escort, Event, Follow, Motion, Path, Track, apply, fill
from tamvt.data.synthetic.shapes import TextureRecipe, random_profile, unit_polygon

LOST_EVENTS = ("hide", "exit", "decoy")
LOST_STREAM = 0x1057  # the lost events' generator: default_rng([video seed, LOST_STREAM])
HIDE_FRAMES = (5, 20)  # a hide keeps the target out of sight this many frames (fewer in short videos)
TRIES = 8
COVER_DEPTH, BOARD_DEPTH = 1.5, 0.72  # covers in front of everything; boards in front of the targets (<= 0.7)

Recipe = tuple[str, np.ndarray, float, TextureRecipe]  # shape, radii, aspect, texture


class KindBook(Protocol):
    """The kinds of the video being drawn (``plan._Kinds``)."""

    recipes: list[Recipe]

    def draw(self, shapes: tuple[str, ...], rng: np.random.Generator) -> Recipe: ...

    def add(self, recipe: Recipe) -> int: ...


@dataclass(frozen=True)
class Scene:
    """What the events need of the video: frame ``size`` (H, W), ``length``, ``fps``, the camera, the kinds."""

    size: tuple[int, int]
    length: int
    fps: float
    camera: Camera
    kinds: KindBook


@dataclass(frozen=True)
class Gone:
    """Where a target went away, for its decoys: ``frame`` it was last where it left from; ``appears``: the
    first hidden frame when a decoy may turn up there (under ``cover``), else 0."""

    frame: int
    appears: int = 0
    cover: tuple[Track, Recipe] | None = None


Drawn = tuple[Track, list[Track], Event, Gone]  # the target on its new path, the tracks added, the event


def lost_names(value: tuple[str, ...] | str) -> tuple[str, ...] | str:
    """``SynthConfig.lost`` checked: ``"random"``, or names of ``LOST_EVENTS`` (a tuple or comma-separated),
    each once. Raises ValueError (one line) for an unknown name, or hide with exit."""
    if isinstance(value, str):
        if value == "random":
            return value
        value = tuple(e.strip() for e in value.split(",") if e.strip())
    names = tuple(dict.fromkeys(value))
    unknown = [e for e in names if e not in LOST_EVENTS]
    if unknown:
        raise ValueError(f"unknown lost event(s) {', '.join(unknown)}; expected {', '.join(LOST_EVENTS)} or 'random'")
    if "hide" in names and "exit" in names:
        raise ValueError("lost events hide and exit exclude each other: a target goes away once")
    return names


def draw_lost_events(rng: np.random.Generator) -> tuple[str, ...]:
    """``lost="random"``: hide (45 %), exit (35 %) or neither; a decoy beside them 60 % of the time, and
    always when the target does not go away."""
    r = rng.random()
    gone = ("hide",) if r < 0.45 else ("exit",) if r < 0.8 else ()
    return gone + (("decoy",) if not gone or rng.random() < 0.6 else ())


def add_lost(
    rng: np.random.Generator, requested: tuple[str, ...], scene: Scene, tracks: list[Track]
) -> tuple[list[Track], list[Event]]:
    """The video's tracks with the ``requested`` lost events (names of ``LOST_EVENTS``) of one target, and
    those events. ``tracks`` hold the targets first, target ``i`` at index ``i - 1``."""
    h, w = scene.size
    targets = [tr for tr in tracks if tr.obj_id > 0]
    pool = [tr.obj_id for tr in targets if tr.area >= 0.005 * h * w] or [tr.obj_id for tr in targets]
    obj = int(rng.choice(pool))
    tracks, events = list(tracks), []
    gone: Gone | None = None
    for name in ("hide", "exit"):
        if name not in requested:
            continue
        for _ in range(TRIES):
            drawn = _hide(rng, scene, tracks[obj - 1]) if name == "hide" else _exit(rng, scene, tracks[obj - 1])
            if drawn is not None:
                target, added, event, gone = drawn
                tracks = _retarget(tracks, tracks[obj - 1].motion, target) + added
                events.append(event)
                break
    if "decoy" in requested:
        decoys = _decoys(rng, scene, tracks[obj - 1], gone)
        tracks += decoys
        events.append(Event("decoy", obj, min(d.appears for d in decoys), scene.length - 1))
    return tracks, events


def _retarget(tracks: list[Track], old: Path, target: Track) -> list[Track]:
    """``target`` in its place, and the occluders that followed its former path following the new one."""
    out = []
    for tr in tracks:
        if tr.obj_id == target.obj_id:
            tr = target
        elif isinstance(tr.motion, Follow) and tr.motion.target is old:
            tr = dataclasses.replace(tr, motion=dataclasses.replace(tr.motion, target=target.motion))
        out.append(tr)
    return out


# ----------------------------------------------------------------------------- geometry and measuring


def _unit(rng: np.random.Generator) -> np.ndarray:
    a = rng.uniform(0, 2 * np.pi)
    return np.array([np.cos(a), np.sin(a)])


def _inner_radius(poly: np.ndarray) -> float:
    """Distance from the origin to the nearest point of the closed polygon ``poly (N, 2)``'s outline."""
    a, b = poly, np.roll(poly, -1, axis=0)
    d = b - a
    u = np.clip(-(a * d).sum(1) / np.maximum((d * d).sum(1), 1e-12), 0.0, 1.0)
    return float(np.linalg.norm(a + u[:, None] * d, axis=1).min())


def _extent(track: Track, recipe: Recipe, frames: Sequence[int]) -> float:
    """Largest distance (world px) of ``track``'s outline from its centre over ``frames``."""
    _, radii, aspect, _ = recipe
    return max(
        (
            float(np.linalg.norm(apply(piece, poly), axis=1).max())
            for t in frames
            for poly, piece in track.pieces(t, radii, aspect)
        ),
        default=0.0,
    )


def _sized(recipe: Recipe, inner: float) -> tuple[float, float]:
    """``(area, outer radius)`` of an object of ``recipe`` whose outline keeps ``inner`` px from its centre."""
    _, radii, aspect, _ = recipe
    unit = unit_polygon(radii, aspect)
    k = inner / _inner_radius(unit)
    return k * k, k * float(np.linalg.norm(unit, axis=1).max())


def _visible(scene: Scene, t: int, target: tuple[Track, Recipe], covers: Sequence[tuple[Track, Recipe]] = ()) -> bool:
    """Whether ``target`` has a pixel in frame ``t`` once ``covers`` are painted over it."""
    canvas = np.zeros(scene.size, np.uint8)
    cam = scene.camera.matrix(t)
    for (track, (_, radii, aspect, _)), value in ((target, 1), *((c, 0) for c in covers)):
        obj = cam @ track.pose(t)
        for poly, piece in track.pieces(t, radii, aspect):
            fill(canvas, apply(obj @ piece, poly), value)
    return bool(canvas.any())


def _seen(scene: Scene, target: tuple[Track, Recipe], covers: Sequence[tuple[Track, Recipe]] = ()) -> np.ndarray:
    """``(T,)`` bool: :func:`_visible` in every frame."""
    return np.array([_visible(scene, t, target, covers) for t in range(scene.length)])


def _gone(seen: np.ndarray, inside: tuple[int, int], frames: tuple[int, int]) -> tuple[int, int] | None:
    """The one run of frames without the target, when it covers ``inside`` and its length is within
    ``frames`` and the target is seen in frames 0 and 1, and before and after the run; else None."""
    idx = np.flatnonzero(~seen)
    if len(idx) == 0 or idx[-1] - idx[0] + 1 != len(idx):
        return None
    s, e = int(idx[0]), int(idx[-1])
    ok = s >= 2 and e <= len(seen) - 2 and s <= inside[0] and e >= inside[1] and frames[0] <= e - s + 1 <= frames[1]
    return (s, e) if ok else None


def _keep_in_frame(scene: Scene, base: Path, offset: np.ndarray, frames: range, radius: float) -> np.ndarray:
    """``offset`` moved as little as possible so that ``base + offset`` keeps ``radius`` px inside the world
    frame over ``frames`` (0 on an axis where nothing fits)."""
    h, w = scene.size
    pos = np.array([base.position(t) for t in frames]).reshape(-1, 2)
    lo = radius + 2 - pos.min(axis=0)
    hi = np.array([w, h], float) - radius - 2 - pos.max(axis=0)
    return np.where(lo <= hi, np.clip(offset, lo, hi), 0.0)


def _still(rng: np.random.Generator, at: np.ndarray, fps: float, jiggle: float = 0.0) -> Motion:
    """A path that stays at ``at``: still, or (``jiggle`` > 0) within ``jiggle`` px of it, turning a few
    degrees over a video."""
    amps = rng.uniform(0.0, jiggle, (2, 2)) / 2
    phases = rng.uniform(0, 2 * np.pi, (2, 2))
    turn = jiggle > 0
    return Motion(
        at - (amps * np.sin(phases)).sum(axis=0),
        amps,
        rng.uniform(2.0, 6.0, (2, 2)) * fps,
        phases,
        rot0=float(rng.uniform(0, 2 * np.pi)),
        spin=float(rng.normal(0, 0.002)) if turn else 0.0,
        wobble=float(rng.uniform(0.0, 0.04)) if turn else 0.0,
        wobble_period=float(rng.uniform(2.0, 6.0)) * fps,
    )


def _hidden_frames(length: int) -> tuple[int, int]:
    """Hidden frames of a hide in a video of ``length`` frames: 5-20, at most half the video."""
    lo, hi = HIDE_FRAMES
    return lo, max(lo, min(hi, length // 2))


# ----------------------------------------------------------------------------- hide


def _hide(rng: np.random.Generator, scene: Scene, target: Track) -> Drawn | None:
    """One draw of a hide under a cover (55 %) or behind a board; None when the measured frames miss
    the promise."""
    return _cover(rng, scene, target) if rng.random() < 0.55 else _board(rng, scene, target)


def _cover(rng: np.random.Generator, scene: Scene, target: Track) -> Drawn | None:
    """A cover comes in at a speed that closes the gap to the target in 2-4 frames, sits on it for the
    hidden frames (the target moves on under it 60 % of the time, by 1-3 of its radii) and leaves."""
    length, recipes = scene.length, scene.kinds.recipes
    lo, hi = _hidden_frames(length)
    # sits up to hi - 2 frames: the target may be fully covered a frame before it sits, and after it leaves
    n, k = int(rng.integers(lo, hi - 1)), int(rng.integers(2, 5))
    if length - 4 - 2 * k - n < 0:
        return None
    start = int(rng.integers(2 + k, length - 1 - k - n))
    end = start + n - 1
    r_t = _extent(target, recipes[target.kind], range(start - k, end + k + 1))
    motion: Path = target.motion
    if rng.random() < 0.6:
        jump = _unit(rng) * rng.uniform(1.0, 3.0) * r_t
        jump = _keep_in_frame(scene, motion, jump, range(end, length), r_t)
        motion = Detour(motion, np.array([start, end], float), np.stack([np.zeros(2), jump]))
    moved = dataclasses.replace(target, motion=motion)
    recipe = scene.kinds.draw(("disc", "blob", "polygon"), rng)
    area, r_out = _sized(recipe, r_t * rng.uniform(1.1, 1.35) + 3.0)
    speed, rot0, spin = (r_out + r_t + 2.0) / k, float(rng.uniform(0, 6.3)), float(rng.normal(0, 0.03))
    path = Escort(motion, start, end, _unit(rng), _unit(rng), speed, rot0, spin)
    cover = Track(0, -1, area, COVER_DEPTH, path)
    run = _gone(_seen(scene, (moved, recipes[target.kind]), [(cover, recipe)]), (start, end), HIDE_FRAMES)
    if run is None:
        return None
    cover = dataclasses.replace(cover, kind=scene.kinds.add(recipe))
    return moved, [cover], Event("hide", target.obj_id, *run), Gone(start, run[0], (cover, recipe))


def _board(rng: np.random.Generator, scene: Scene, target: Track) -> Drawn | None:
    """The target walks behind a still board placed 1.6-2.4 of its radii away (2-4 frames), stays behind it
    for the hidden frames, drifting a little, and comes out 2-4 frames later: the way it went in (back on
    its path) or on the far side (and it stays there, moved)."""
    length, recipes = scene.length, scene.kinds.recipes
    h, w = scene.size
    lo, hi = _hidden_frames(length)
    n, k_in, k_out = int(rng.integers(lo, hi - 1)), int(rng.integers(2, 5)), int(rng.integers(2, 5))
    if length - 4 - k_in - k_out - n < 0:
        return None
    start = int(rng.integers(2 + k_in, length - 1 - k_out - n))
    a, end = start - k_in, start + n - 1
    b = end + k_out
    base = target.motion
    r_t = _extent(target, recipes[target.kind], range(a, b + 1))
    way = _unit(rng)
    at = np.clip(base.position(a) + way * r_t * rng.uniform(1.6, 2.4), 0.15 * np.array([w, h]), 0.85 * np.array([w, h]))
    drift = _unit(rng) * rng.uniform(0.0, 0.3) * r_t
    if rng.random() < 0.5:
        out = np.zeros(2)  # back the way it came, onto its own path
    else:
        beyond = at + drift + way * r_t * rng.uniform(1.6, 2.4)
        out = _keep_in_frame(scene, base, beyond - base.position(b), range(b, length), r_t)
    offsets = np.stack([np.zeros(2), at - base.position(start), at + drift - base.position(end), out])
    moved = dataclasses.replace(target, motion=Detour(base, np.array([a, start, end, b], float), offsets))
    reach = max(float(np.linalg.norm(moved.motion.position(t) - at)) for t in range(start, end + 1))
    recipe = scene.kinds.draw(("stick", "ellipse", "polygon", "blob"), rng)
    area, _ = _sized(recipe, (reach + r_t) * rng.uniform(1.05, 1.25) + 3.0)
    board = Track(0, -1, area, BOARD_DEPTH, _still(rng, at, scene.fps))
    run = _gone(_seen(scene, (moved, recipes[target.kind]), [(board, recipe)]), (start, end), HIDE_FRAMES)
    if run is None:
        return None
    board = dataclasses.replace(board, kind=scene.kinds.add(recipe))
    return moved, [board], Event("hide", target.obj_id, *run), Gone(a)


# ----------------------------------------------------------------------------- exit

_SIDES = {"left": (0, -1.0), "right": (0, 1.0), "top": (1, -1.0), "bottom": (1, 1.0)}  # (axis, sign)


def _outside(scene: Scene, side: str, along: float, margin: float) -> np.ndarray:
    """The image point ``margin`` px beyond edge ``side``, at ``along`` (0..1) of the edge."""
    h, w = scene.size
    wh = np.array([w, h], float)
    axis, sign = _SIDES[side]
    p = np.empty(2)
    p[axis] = -margin if sign < 0 else wh[axis] + margin
    p[1 - axis] = along * wh[1 - axis]
    return p


def _exit(rng: np.random.Generator, scene: Scene, target: Track) -> Drawn | None:
    """The target heads out across the edge nearest to it (70 %) or another one at 4-8 % of the frame's
    longer side per frame, stays out for 2-20 frames (at most a third of the video), and comes back in
    across the same edge (50 %) or an adjacent one (out there it goes round the corner), back onto its
    path. Its path's points are set in the image at the frames they are reached (the camera moves)."""
    length, recipes, cam = scene.length, scene.kinds.recipes, scene.camera
    h, w = scene.size
    base = target.motion
    n = int(rng.integers(2, max(2, min(20, length // 3)) + 1))
    r_t = _extent(target, recipes[target.kind], range(length))
    margin = (1.0 + cam.zoom_amp) * r_t + 3.0 + 0.03 * min(h, w)

    def image(p: np.ndarray, t: float) -> np.ndarray:
        return apply(cam.matrix(t), p[None])[0]

    def world(q: np.ndarray, t: float) -> np.ndarray:
        return apply(np.linalg.inv(cam.matrix(t)), q[None])[0]

    mid = image(base.position(length / 2), length / 2)
    gaps = {"left": mid[0], "right": w - mid[0], "top": mid[1], "bottom": h - mid[1]}
    side_out = min(gaps, key=gaps.__getitem__) if rng.random() < 0.7 else str(rng.choice(list(_SIDES)))
    if rng.random() < 0.5:
        side_in = side_out
    else:
        side_in = str(rng.choice([s for s in _SIDES if _SIDES[s][0] != _SIDES[side_out][0]]))
    speed = rng.uniform(0.04, 0.08) * max(h, w)
    along_out = float(np.clip(mid[1 - _SIDES[side_out][0]] / (w, h)[1 - _SIDES[side_out][0]], 0.15, 0.85))
    q_out = _outside(scene, side_out, along_out, margin)
    q_in = _outside(scene, side_in, float(rng.uniform(0.15, 0.85)), margin)
    k_out = int(np.ceil(np.linalg.norm(q_out - mid) / speed))
    k_in = int(np.ceil(np.linalg.norm(q_in - mid) / speed))
    room = length - 5 - n  # frames 0, 1 and the last two see the target on its path
    if k_out + k_in > room:
        k_out, k_in = max(1, k_out * room // (k_out + k_in)), max(1, k_in * room // (k_out + k_in))
    if k_out + k_in > room:
        return None
    a = int(rng.integers(2, length - 2 - (k_out + n - 1 + k_in)))
    x0, x1 = a + k_out, a + k_out + n - 1
    b = x1 + k_in
    keys: list[tuple[float, np.ndarray]] = [(a, np.zeros(2)), (x0, world(q_out, x0) - base.position(x0))]
    if side_in != side_out:  # round the corner, beyond both edges
        tc = (x0 + x1) / 2
        corner = q_out.copy()
        corner[_SIDES[side_in][0]] = q_in[_SIDES[side_in][0]]
        keys.append((tc, world(corner, tc) - base.position(tc)))
    keys += [(x1, world(q_in, x1) - base.position(x1)), (b, np.zeros(2))]
    times = np.array([t for t, _ in keys], float)
    if np.any(np.diff(times) <= 0):
        return None
    moved = dataclasses.replace(target, motion=Detour(base, times, np.stack([o for _, o in keys])))
    run = _gone(_seen(scene, (moved, recipes[target.kind])), (x0, x1), (2, HIDE_FRAMES[1]))
    if run is None:
        return None
    return moved, [], Event("exit", target.obj_id, *run), Gone(a)


# ----------------------------------------------------------------------------- decoys


def _decoys(rng: np.random.Generator, scene: Scene, target: Track, gone: Gone | None) -> list[Track]:
    """One decoy (70 %) or two. The first sits where the target was when it went away (``gone``; give or
    take a tenth of its radius), else near the target's path (1.3-2.5 radii from where it is at a random
    frame), like a second decoy. Under a cover the first turns up at the first hidden frame half of the
    time, unless it would show there: then it is there all video."""
    h, w = scene.size
    recipes = scene.kinds.recipes
    shape, _, _, texture = recipes[target.kind]
    r_t = float(np.sqrt(target.area))
    decoys = []
    for j in range(1 if rng.random() < 0.7 else 2):
        appears = 0
        if j == 0 and gone is not None:
            at = target.motion.position(gone.frame) + _unit(rng) * rng.uniform(0.0, 0.1) * r_t
            if gone.cover is not None and rng.random() < 0.5:
                appears = gone.appears
        else:
            at = target.motion.position(int(rng.integers(scene.length))) + _unit(rng) * rng.uniform(1.3, 2.5) * r_t
        at = np.clip(at, 0.08 * np.array([w, h]), 0.92 * np.array([w, h]))
        if rng.random() < 0.5:
            kind, recipe = target.kind, recipes[target.kind]
        else:
            recipe = (shape, *random_profile(shape, rng), texture)
            kind = -1
        area = target.area * (rng.uniform(0.75, 1.0) if appears else rng.uniform(0.75, 1.3))
        motion = _still(rng, at, scene.fps, jiggle=1.5)
        decoy = Track(0, kind, area, target.depth - 0.001 * (j + 1), motion, appears=appears)
        if (
            gone is not None
            and gone.cover is not None
            and appears
            and _visible(scene, appears, (decoy, recipe), [gone.cover])
        ):
            decoy = dataclasses.replace(decoy, appears=0)
        if kind < 0:
            decoy = dataclasses.replace(decoy, kind=scene.kinds.add(recipe))
        decoys.append(decoy)
    return decoys
