"""Planning a synthetic video: everything drawn from the seed (kinds, objects, events, paths, camera,
background) before any frame is rendered. Rendering then only evaluates the plan at a frame index.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tamvt.data.synthetic.events import EVENT_TYPES, Camera, CutSpec, Event, Follow, Motion, PeelSpec, Track, apply
from tamvt.data.synthetic.shapes import (SHAPES, SPRITE_EXTENT, TEXTURES, TextureRecipe, harmonic_profile, hsv_colors,
                                         make_background, random_profile, random_texture, unit_polygon)
from tamvt.errors import TamvtError

FEATURES = ("small", "multi_instance")
EVENTS = EVENT_TYPES + FEATURES
SMALL_PCT = 0.5  # VOST's "small object": below 0.5 % of the frame area
LONG_FRAMES = 300
MIN_EVENT_LENGTH = 12  # timed events need frames before, during and after them


class SynthConfigError(TamvtError, ValueError):
    """An impossible synthetic-video configuration (the CLI reports it on one line)."""


@dataclass(frozen=True)
class SynthConfig:
    """What one synthetic video looks like.

    size: ``(H, W)``; length: frames; num_objects: targets (ids 1..K); events: names from ``EVENTS``
    (timed events ``EVENT_TYPES`` plus the features ``small`` / ``multi_instance``) or ``"random"``;
    fps: frame rate (motion speeds are defined per second); seed: fixes everything;
    num_distractors: non-target moving shapes (``None`` = 2..4 from the seed); camera_motion:
    scale of the camera's pan / zoom / roll (0 = static); name: sequence name (default ``synth-<seed>``).
    """

    size: tuple[int, int] = (240, 320)
    length: int = 48
    num_objects: int = 2
    events: tuple[str, ...] | str = "random"
    fps: float = 10.0
    seed: int = 0
    num_distractors: int | None = None
    camera_motion: float = 1.0
    name: str = ""

    def __post_init__(self) -> None:
        size = tuple(int(x) for x in self.size)
        if len(size) != 2 or min(size) < 32:
            raise SynthConfigError(f"size must be (H, W) with both >= 32, got {self.size}")
        object.__setattr__(self, "size", size)
        events = self.events
        if isinstance(events, str) and events != "random":
            events = tuple(e.strip() for e in events.split(",") if e.strip())
        if not isinstance(events, str):
            events = tuple(dict.fromkeys(events))  # dedupe, keep order
            if "long" in events:
                raise SynthConfigError(f"'long' is not an event: ask for length >= {LONG_FRAMES} instead")
            unknown = [e for e in events if e not in EVENTS]
            if unknown:
                raise SynthConfigError(f"unknown event(s) {', '.join(unknown)}; expected {', '.join(EVENTS)} or 'random'")
            if any(e in EVENT_TYPES for e in events) and self.length < MIN_EVENT_LENGTH:
                raise SynthConfigError(f"length {self.length} is too short for events: need >= {MIN_EVENT_LENGTH} frames")
        object.__setattr__(self, "events", events)
        if self.length < (MIN_EVENT_LENGTH if events == "random" else 2):
            raise SynthConfigError(f"length must be >= {MIN_EVENT_LENGTH if events == 'random' else 2}, got {self.length}")
        if not 1 <= self.num_objects <= 50:
            raise SynthConfigError(f"num_objects must be in 1..50, got {self.num_objects}")
        if self.fps <= 0 or self.camera_motion < 0 or self.seed < 0:
            raise SynthConfigError("fps must be > 0, camera_motion >= 0 and seed >= 0")
        if self.num_distractors is not None and self.num_distractors < 0:
            raise SynthConfigError(f"num_distractors must be >= 0, got {self.num_distractors}")

    @property
    def sequence_name(self) -> str:
        return self.name or f"synth-{self.seed}"


@dataclass(frozen=True)
class Kind:
    """A shape + texture recipe; look-alike instances share one.

    radii ``(N_ANGLES,)`` and aspect define the outline, ``outline (N_ANGLES, 2)`` is its unit-area
    polygon (cached: most objects keep it all video); sprite: texture ``(S, S, 3)`` uint8 RGB.
    """

    name: str
    radii: np.ndarray
    aspect: float
    outline: np.ndarray
    sprite: np.ndarray


@dataclass(frozen=True)
class VideoPlan:
    """Everything drawn from the seed; rendering a frame only evaluates it at a frame index.

    tracks are sorted far to near (painting order); flesh: the textures revealed by peel events;
    bg_offset: the background pixel of world point (0, 0) (the background is larger than the frame).
    """

    config: SynthConfig
    events: tuple[Event, ...]
    kinds: tuple[Kind, ...]
    tracks: tuple[Track, ...]
    flesh: tuple[np.ndarray, ...]
    camera: Camera
    background: np.ndarray
    bg_offset: np.ndarray
    light: tuple[float, float, float]  # amplitude, period (frames), phase of the exposure flicker


def derive_seed(seed: int, index: int) -> int:
    """A well-mixed 32-bit seed for item ``index`` of a stream / suite started from ``seed``."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


def _draw_events(rng: np.random.Generator) -> tuple[str, ...]:
    """events="random": each timed event with probability 0.35 (at least one), plus the features."""
    timed = [e for e in EVENT_TYPES if rng.random() < 0.35] or [str(rng.choice(EVENT_TYPES))]
    return tuple(timed) + tuple(f for f, p in (("small", 0.25), ("multi_instance", 0.3)) if rng.random() < p)


def _window(rng: np.random.Generator, length: int, fps: float, min_dur: int) -> tuple[int, int]:
    """(start, end) of an event: 12-25 % of the video (at most 8 s), with frames before and after."""
    margin = max(1, int(round(0.08 * length)))
    dur = max(min_dur, min(int(round(length * rng.uniform(0.12, 0.25))), int(8 * fps)))
    dur = min(dur, length - 2 * margin - 1)
    start = int(rng.integers(margin, length - margin - dur))
    return start, start + dur


def _small_area_cap(frame_area: float, zoom_max: float) -> float:
    """Largest polygon area (world px^2) whose mask stays below 0.45 % of the frame at the highest zoom.

    cv2.fillPoly also fills the pixels the outline passes through: the mask of a polygon of area A and
    perimeter P (<= 5.5 sqrt(A) for our outlines) has up to about A + 0.8 P pixels, which matters
    for objects of a few dozen pixels. Solve z^2 A + 4.4 z sqrt(A) <= 0.0045 F for A.
    """
    x = (-4.4 + np.sqrt(4.4**2 + 4 * 0.0045 * frame_area)) / 2
    return float((x / zoom_max) ** 2)


def _motion(rng: np.random.Generator, start: np.ndarray, amp: np.ndarray, fps: float) -> Motion:
    """A wandering path that is at ``start`` at frame 0 and stays within ``start +- 2 * amp``."""
    amps = rng.uniform(0.3, 1.0, (2, 2)) * amp / 2
    periods = rng.uniform(4.0, 15.0, (2, 2)) * fps
    phases = rng.uniform(0.0, 2 * np.pi, (2, 2))
    p0 = start - (amps * np.sin(phases)).sum(axis=0)
    return Motion(p0, amps, periods, phases, rot0=float(rng.uniform(0, 2 * np.pi)), spin=float(rng.normal(0, 0.3)) / fps,
                  wobble=float(rng.uniform(0.0, 0.2)), wobble_period=float(rng.uniform(2.0, 6.0)) * fps)


def plan_video(cfg: SynthConfig) -> VideoPlan:
    """Draw everything about one video from ``cfg.seed``: kinds, objects, events, paths, camera, background."""
    rng = np.random.default_rng(cfg.seed)
    h, w = cfg.size
    fps, n_obj, cm = cfg.fps, cfg.num_objects, cfg.camera_motion
    frame_area, wh = float(h * w), np.array([w, h], float)
    requested = _draw_events(rng) if cfg.events == "random" else cfg.events
    n_dis = int(rng.integers(2, 5)) if cfg.num_distractors is None else cfg.num_distractors
    ids = list(range(1, n_obj + 1))

    # Sizes: normal targets 1.2-10 % of the frame (log-uniform, less when crowded), small ones 0.12-0.28 %.
    small_ids = {int(rng.integers(1, n_obj + 1))} if "small" in requested else set()
    crowd = min(1.0, 4.0 / n_obj)
    small_hi = min(0.0028 * frame_area, _small_area_cap(frame_area, 1.0 + 0.08 * cm))
    areas = {i: (rng.uniform(0.43 * small_hi, small_hi) if i in small_ids
                 else frame_area * crowd * np.exp(rng.uniform(np.log(0.012), np.log(0.1)))) for i in ids}

    recipes: list[tuple[str, np.ndarray, float, TextureRecipe]] = []
    hue0, style0 = rng.uniform(), int(rng.integers(len(TEXTURES)))

    def new_kind(shapes: tuple[str, ...]) -> int:
        j = len(recipes)
        shape = str(rng.choice(shapes))
        radii, aspect = random_profile(shape, rng)
        # Golden-ratio hue steps and rotating styles keep distinct kinds distinct.
        tex = random_texture(rng, hue0 + 0.381966 * j, TEXTURES[(style0 + j) % len(TEXTURES)])
        recipes.append((shape, radii, aspect, tex))
        return j

    target_kind = {i: new_kind(SHAPES[:4]) for i in ids}
    lookalikes: list[tuple[int, float]] = []  # (kind, area) of distractors copying a target
    if "multi_instance" in requested:
        base = int(rng.choice(ids))
        others = [i for i in ids if i != base and (i in small_ids) == (base in small_ids)]
        if others and rng.random() < 0.5:  # a second target of the same kind
            j = int(rng.choice(others))
            target_kind[j], areas[j] = target_kind[base], areas[base] * rng.uniform(0.8, 1.25)
            n_look = 1
        else:
            n_look = int(rng.integers(1, 3))
        lookalikes = [(target_kind[base], areas[base] * rng.uniform(0.8, 1.25)) for _ in range(n_look)]

    # Events go to normal-size targets first (a cut of a 0.2 % object is hardly visible).
    pool = [i for i in ids if i not in small_ids] or ids
    order = [int(x) for x in rng.permutation(pool)]
    events = []
    for n, etype in enumerate(e for e in requested if e in EVENT_TYPES):
        start, end = _window(rng, cfg.length, fps, 8 if etype == "occlusion" else 3)
        events.append(Event(etype, order[n % len(order)], start, end))

    placed: list[tuple[np.ndarray, float]] = []  # frame-0 positions and radii that later objects avoid

    def place(kind: int, area: float, lo: float, hi: float) -> np.ndarray:
        _, radii, aspect, _ = recipes[kind]
        radius = float(np.linalg.norm(unit_polygon(radii, aspect), axis=1).max() * np.sqrt(area))
        best, best_gap = wh / 2, -np.inf
        for _ in range(40):
            q = rng.uniform(lo * wh, hi * wh)
            gap = min((np.linalg.norm(q - p) - r - radius for p, r in placed), default=np.inf)
            if gap > best_gap:
                best, best_gap = q, gap
            if gap >= 2.0:
                break
        placed.append((best, radius))
        return best

    tracks, flesh = [], []
    for i in ids:
        specs: dict = {}
        for ev in (e for e in events if e.object == i):
            if ev.type == "cut":
                k = int(rng.integers(2, 5))
                psi = rng.uniform(0, 2 * np.pi) + 2 * np.pi * (np.arange(k) + rng.uniform(-0.15, 0.15, k)) / k
                dirs = np.stack([np.cos(psi), np.sin(psi)], axis=1)
                specs["cut"] = CutSpec(ev, rng.normal(0, 0.04, 2) + 0.25 * dirs, dirs,
                                       drift=max(0.2 * float(np.sqrt(areas[i])), 4.0), spins=rng.uniform(-0.08, 0.08, k))
            elif ev.type == "peel":
                a = rng.uniform(0, 2 * np.pi)
                hue = hue0 + 0.381966 * target_kind[i] + 0.08
                flesh.append(TextureRecipe("noise", hsv_colors(hue + np.array([0, 0.03, -0.03]), rng.uniform(0.15, 0.45, 3),
                                                               rng.uniform(0.75, 1.0, 3)), 3.0, 0.0, float(rng.uniform(0, 6.3)),
                                           int(rng.integers(2**31))))
                specs["peel"] = PeelSpec(ev, np.array([np.cos(a), np.sin(a)]), float(rng.uniform(0.35, 0.6)), len(flesh) - 1)
            elif ev.type == "shrink":
                specs["shrink"] = (ev, float(rng.uniform(0.3, 0.55)))
            elif ev.type == "morph":
                specs["morph"] = (ev, harmonic_profile(rng, rng.uniform(0.25, 0.45)))
            elif ev.type == "mold":
                specs["mold"] = (ev, float(rng.uniform(1.8, 2.8)), float(rng.uniform(0, np.pi)))
        start = place(target_kind[i], areas[i], 0.2, 0.8)
        tracks.append(Track(i, target_kind[i], areas[i], float(rng.uniform(0.3, 0.7)),
                            _motion(rng, start, 0.08 * wh, fps), **specs))

    # Distractors: behind the targets, or in front (placed away from the targets at frame 0).
    extra = [(new_kind(SHAPES), frame_area * float(np.exp(rng.uniform(np.log(0.008), np.log(0.06)))))
             for _ in range(n_dis)] + lookalikes
    for kind, area in extra:
        front = rng.random() < 0.35
        depth = float(rng.uniform(0.75, 0.95) if front else rng.uniform(0.02, 0.25))
        start = place(kind, area, 0.05, 0.95)
        tracks.append(Track(0, kind, area, depth, _motion(rng, start, 0.12 * wh, fps)))

    for n, ev in enumerate(e for e in events if e.type == "occlusion"):
        tracks.append(_occluder(rng, tracks[ev.object - 1], recipes, new_kind(("disc",)), ev, 1.0 + 0.01 * n, fps))

    zoom_amp = 0.08 * cm * float(rng.uniform(0.5, 1.0))
    pan = Motion(p0=wh / 2, amps=cm * np.array([0.06, 0.02, 0.004])[:, None] * wh * rng.uniform(0.5, 1.0, (3, 2)),
                 periods=fps * rng.uniform([[8.0], [2.0], [0.4]], [[20.0], [5.0], [1.0]], (3, 2)),
                 phases=rng.uniform(0, 2 * np.pi, (3, 2)), rot0=0.0, spin=0.0,
                 wobble=0.05 * cm * float(rng.uniform(0.3, 1.0)), wobble_period=float(rng.uniform(4.0, 10.0)) * fps)
    camera = Camera((h, w), pan, zoom_amp, float(rng.uniform(6.0, 15.0)) * fps, float(rng.uniform(0, 2 * np.pi)))
    light = (0.05 * cm * float(rng.uniform(0.3, 1.0)), float(rng.uniform(3.0, 10.0)) * fps, float(rng.uniform(0, 2 * np.pi)))
    bh, bw = int(round(h * 1.5)), int(round(w * 1.5))
    background = make_background(bh, bw, rng)

    # Sprites just fine enough for the largest on-screen size of each kind.
    sizes = [8] * len(recipes)
    for tr in tracks:
        need = 2 * SPRITE_EXTENT * np.sqrt(tr.area) * (1 + zoom_amp)
        sizes[tr.kind] = max(sizes[tr.kind], min(512, int(np.ceil(need))))
    kinds = tuple(Kind(f"{shape}-{tex.style}-{_letters(j)}", radii, aspect, unit_polygon(radii, aspect), tex.render(sizes[j]))
                  for j, (shape, radii, aspect, tex) in enumerate(recipes))
    flesh_size = {tr.peel.flesh: sizes[tr.kind] for tr in tracks if tr.peel is not None}
    flesh_sprites = tuple(recipe.render(flesh_size[n]) for n, recipe in enumerate(flesh))
    return VideoPlan(cfg, tuple(events), kinds, tuple(sorted(tracks, key=lambda tr: tr.depth)), flesh_sprites, camera,
                     background, np.array([(bw - w) / 2, (bh - h) / 2]), light)


def _letters(j: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA ... (kind names)."""
    s = ""
    j += 1
    while j:
        j, r = divmod(j - 1, 26)
        s = chr(65 + r) + s
    return s


def _occluder(rng: np.random.Generator, target: Track, recipes: list, kind: int, ev: Event, depth: float,
              fps: float) -> Track:
    """A disc in front of everything that sweeps across ``target`` during ``ev``, sized to hide it
    completely around mid-event (its inner radius exceeds the target's outer radius plus the path's
    step per frame), then moves on so the target re-appears."""
    _, radii, aspect, _ = recipes[target.kind]
    r_t = max(float(np.linalg.norm(apply(piece, poly), axis=1).max())
              for t in range(ev.start, ev.end + 1) for poly, piece in target.pieces(t, radii, aspect))
    _, o_radii, o_aspect, _ = recipes[kind]
    unit = np.linalg.norm(unit_polygon(o_radii, o_aspect), axis=1)
    r_in, q = float(unit.min()), float(unit.max() / unit.min())
    dur = max(ev.end - ev.start, 1)
    # r_occ >= 1.2 r_t + 2 + step / 2, step = 2 D / dur, D = 1.1 (q r_occ + r_t) + 2 (clear at both ends)
    r_occ = (1.2 * r_t + 2.0 + (1.1 * r_t + 2.0) / dur) / (1.0 - 1.1 * q / dur)
    dist = 1.1 * (q * r_occ + r_t) + 2.0
    a = rng.uniform(0, 2 * np.pi)
    path = Follow(target.motion, ev, np.array([np.cos(a), np.sin(a)]), dist, float(rng.uniform(0, 6.3)),
                  float(rng.normal(0, 0.3)) / fps)
    return Track(0, kind, (r_occ / r_in) ** 2, depth, path)
