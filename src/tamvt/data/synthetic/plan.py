"""Planning a synthetic video: everything drawn from the seed (kinds, objects, events, paths, camera,
background) before any frame is rendered. Rendering then only evaluates the plan at a frame index.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tamvt.data.synthetic.events import EVENT_TYPES, Camera, CutSpec, Event, Follow, Motion, PeelSpec, Track, apply
from tamvt.data.synthetic.lost import LOST_EVENTS, LOST_STREAM, Recipe, Scene, add_lost, draw_lost_events, lost_names
from tamvt.data.synthetic.shapes import (
    SHAPES,
    SPRITE_EXTENT,
    TEXTURES,
    TextureRecipe,
    harmonic_profile,
    hsv_colors,
    make_background,
    random_profile,
    random_texture,
    unit_polygon,
)
from tamvt.errors import TamvtError

FEATURES = ("small", "multi_instance")
EVENTS = EVENT_TYPES + FEATURES
SMALL_PCT = 0.5  # VOST's "small object": below 0.5 % of the frame area
LONG_FRAMES = 300
MIN_EVENT_LENGTH = 12  # timed events need frames before, during and after them
MIN_LOST_LENGTH = 20  # a hide keeps the target hidden 5+ frames, with frames to go and come back


class SynthConfigError(TamvtError, ValueError):
    """An impossible synthetic-video configuration (the CLI reports it on one line)."""


@dataclass(frozen=True)
class SynthConfig:
    """What one synthetic video looks like.

    size: ``(H, W)``; length: frames; num_objects: targets (ids 1..K); events: names from ``EVENTS``
    (timed events ``EVENT_TYPES`` plus the features ``small`` / ``multi_instance``) or ``"random"``;
    fps: frame rate (motion speeds are defined per second); seed: fixes everything;
    num_distractors: non-target moving shapes (``None`` = 2..4 from the seed); camera_motion:
    scale of the camera's pan / zoom / roll (0 = static); name: sequence name (default ``synth-<seed>``);
    lost: lost-and-found events of one target, names from ``LOST_EVENTS`` (``hide`` or ``exit``, and
    ``decoy``) or ``"random"``, drawn from a generator of their own (:mod:`~tamvt.data.synthetic.lost`), so
    the rest of the video is the one drawn without them.
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
    lost: tuple[str, ...] | str = ()

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
                hint = f" ({', '.join(LOST_EVENTS)} are lost events)" if set(unknown) & set(LOST_EVENTS) else ""
                raise SynthConfigError(
                    f"unknown event(s) {', '.join(unknown)}; expected {', '.join(EVENTS)} or 'random'{hint}"
                )
            if any(e in EVENT_TYPES for e in events) and self.length < MIN_EVENT_LENGTH:
                raise SynthConfigError(
                    f"length {self.length} is too short for events: need >= {MIN_EVENT_LENGTH} frames"
                )
        object.__setattr__(self, "events", events)
        if self.length < (MIN_EVENT_LENGTH if events == "random" else 2):
            raise SynthConfigError(
                f"length must be >= {MIN_EVENT_LENGTH if events == 'random' else 2}, got {self.length}"
            )
        if not 1 <= self.num_objects <= 50:
            raise SynthConfigError(f"num_objects must be in 1..50, got {self.num_objects}")
        if self.fps <= 0 or self.camera_motion < 0 or self.seed < 0:
            raise SynthConfigError("fps must be > 0, camera_motion >= 0 and seed >= 0")
        if self.num_distractors is not None and self.num_distractors < 0:
            raise SynthConfigError(f"num_distractors must be >= 0, got {self.num_distractors}")
        try:
            object.__setattr__(self, "lost", lost_names(self.lost))
        except ValueError as err:
            raise SynthConfigError(str(err)) from None
        if self.lost and self.length < MIN_LOST_LENGTH:
            raise SynthConfigError(f"length {self.length} is too short for lost events: need >= {MIN_LOST_LENGTH}")

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
    return Motion(
        p0,
        amps,
        periods,
        phases,
        rot0=float(rng.uniform(0, 2 * np.pi)),
        spin=float(rng.normal(0, 0.3)) / fps,
        wobble=float(rng.uniform(0.0, 0.2)),
        wobble_period=float(rng.uniform(2.0, 6.0)) * fps,
    )


def plan_video(cfg: SynthConfig) -> VideoPlan:
    """Draw everything about one video from ``cfg.seed``: kinds, objects, events, paths, camera, background.

    The parts are drawn in this order from one generator (the order fixes every pixel of a seed): events,
    sizes, target kinds, look-alikes, event timing, targets, distractors, occluders, camera, background.
    The lost events (``cfg.lost``) come last, from a second generator, ``default_rng([seed, LOST_STREAM])``.
    """
    rng = np.random.default_rng(cfg.seed)
    h, w = cfg.size
    requested = _draw_events(rng) if isinstance(cfg.events, str) else cfg.events  # "random" is the one string
    n_dis = int(rng.integers(2, 5)) if cfg.num_distractors is None else cfg.num_distractors
    ids = list(range(1, cfg.num_objects + 1))
    small_ids, areas = _draw_areas(rng, cfg, ids, "small" in requested)
    kinds = _Kinds(rng)
    target_kind = {i: kinds.new(SHAPES[:4]) for i in ids}
    lookalikes = _draw_lookalikes(rng, ids, small_ids, target_kind, areas) if "multi_instance" in requested else []
    events = _draw_event_timing(rng, cfg, requested, ids, small_ids)
    placer = _Placer(rng, np.array([w, h], float))
    tracks = [
        _target_track(rng, cfg, i, [e for e in events if e.object == i], areas[i], target_kind[i], kinds, placer)
        for i in ids
    ]
    tracks += _distractor_tracks(rng, cfg, n_dis, lookalikes, kinds, placer)
    for n, ev in enumerate(e for e in events if e.type == "occlusion"):
        tracks.append(
            _occluder(rng, tracks[ev.object - 1], kinds.recipes, kinds.new(("disc",)), ev, 1.0 + 0.01 * n, cfg.fps)
        )
    camera, zoom_amp, light = _draw_camera(rng, cfg)
    bh, bw = int(round(h * 1.5)), int(round(w * 1.5))
    background = make_background(bh, bw, rng)
    if cfg.lost:
        lost_rng = np.random.default_rng([cfg.seed, LOST_STREAM])
        lost = draw_lost_events(lost_rng) if isinstance(cfg.lost, str) else cfg.lost  # "random" is the one string
        scene = Scene(cfg.size, cfg.length, cfg.fps, camera, kinds)
        tracks, lost_events = add_lost(lost_rng, lost, scene, tracks)
        events += lost_events
    kind_list, flesh_sprites = _sprites(kinds, tracks, zoom_amp)
    return VideoPlan(
        cfg,
        tuple(events),
        kind_list,
        tuple(sorted(tracks, key=lambda tr: tr.depth)),
        flesh_sprites,
        camera,
        background,
        np.array([(bw - w) / 2, (bh - h) / 2]),
        light,
    )


def _draw_areas(
    rng: np.random.Generator, cfg: SynthConfig, ids: list[int], with_small: bool
) -> tuple[set[int], dict[int, float]]:
    """``(ids of small targets, target id -> area in pixels)``: normal targets 1.2-10 % of the frame
    (log-uniform, less when crowded), small ones 0.12-0.28 %."""
    h, w = cfg.size
    frame_area, n_obj = float(h * w), cfg.num_objects
    small_ids = {int(rng.integers(1, n_obj + 1))} if with_small else set()
    crowd = min(1.0, 4.0 / n_obj)
    small_hi = min(0.0028 * frame_area, _small_area_cap(frame_area, 1.0 + 0.08 * cfg.camera_motion))
    areas = {
        i: (
            rng.uniform(0.43 * small_hi, small_hi)
            if i in small_ids
            else frame_area * crowd * np.exp(rng.uniform(np.log(0.012), np.log(0.1)))
        )
        for i in ids
    }
    return small_ids, areas


class _Kinds:
    """The object kinds of a video as they are drawn: ``(shape, radii, aspect, texture recipe)`` each, and the
    flesh textures that peeled objects show."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.recipes: list[Recipe] = []
        self.flesh: list[TextureRecipe] = []
        self.hue0, self.style0 = rng.uniform(), int(rng.integers(len(TEXTURES)))

    def new(self, shapes: tuple[str, ...]) -> int:
        """Draw a new kind with one of ``shapes``; its index."""
        return self.add(self.draw(shapes, self.rng))

    def draw(self, shapes: tuple[str, ...], rng: np.random.Generator) -> Recipe:
        """The next kind with one of ``shapes``, drawn from ``rng`` (not added yet: see :meth:`add`)."""
        j = len(self.recipes)
        shape = str(rng.choice(shapes))
        radii, aspect = random_profile(shape, rng)
        # Golden-ratio hue steps and rotating styles keep distinct kinds distinct.
        tex = random_texture(rng, self.hue0 + 0.381966 * j, TEXTURES[(self.style0 + j) % len(TEXTURES)])
        return shape, radii, aspect, tex

    def add(self, recipe: Recipe) -> int:
        """Add a kind; its index."""
        self.recipes.append(recipe)
        return len(self.recipes) - 1


def _draw_lookalikes(
    rng: np.random.Generator, ids: list[int], small_ids: set[int], target_kind: dict[int, int], areas: dict[int, float]
) -> list[tuple[int, float]]:
    """``multi_instance``: ``(kind, area)`` of the distractors copying a target; sometimes a second target
    takes the same kind instead (``target_kind`` and ``areas`` are updated in place)."""
    base = int(rng.choice(ids))
    others = [i for i in ids if i != base and (i in small_ids) == (base in small_ids)]
    if others and rng.random() < 0.5:  # a second target of the same kind
        j = int(rng.choice(others))
        target_kind[j], areas[j] = target_kind[base], areas[base] * rng.uniform(0.8, 1.25)
        n_look = 1
    else:
        n_look = int(rng.integers(1, 3))
    return [(target_kind[base], areas[base] * rng.uniform(0.8, 1.25)) for _ in range(n_look)]


def _draw_event_timing(
    rng: np.random.Generator, cfg: SynthConfig, requested: tuple[str, ...], ids: list[int], small_ids: set[int]
) -> list[Event]:
    """Each requested transformation, given a target and a time window. Events go to normal-size targets
    first (a cut of a 0.2 % object is hardly visible)."""
    pool = [i for i in ids if i not in small_ids] or ids
    order = [int(x) for x in rng.permutation(pool)]
    events = []
    for n, etype in enumerate(e for e in requested if e in EVENT_TYPES):
        start, end = _window(rng, cfg.length, cfg.fps, 8 if etype == "occlusion" else 3)
        events.append(Event(etype, order[n % len(order)], start, end))
    return events


class _Placer:
    """Frame-0 positions that keep objects apart: each new object goes where it is furthest from those
    placed before (best of 40 tries, the first 2 px clear wins)."""

    def __init__(self, rng: np.random.Generator, wh: np.ndarray) -> None:
        self.rng, self.wh = rng, wh
        self.placed: list[tuple[np.ndarray, float]] = []  # positions and radii that later objects avoid

    def place(self, recipe: tuple, area: float, lo: float, hi: float) -> np.ndarray:
        """A position ``(x, y)`` in ``[lo, hi]`` of the frame for an object of ``recipe`` and ``area``."""
        _, radii, aspect, _ = recipe
        radius = float(np.linalg.norm(unit_polygon(radii, aspect), axis=1).max() * np.sqrt(area))
        best, best_gap = self.wh / 2, -np.inf
        for _ in range(40):
            q = self.rng.uniform(lo * self.wh, hi * self.wh)
            gap = min((float(np.linalg.norm(q - p)) - r - radius for p, r in self.placed), default=np.inf)
            if gap > best_gap:
                best, best_gap = q, gap
            if gap >= 2.0:
                break
        self.placed.append((best, radius))
        return best


def _event_specs(rng: np.random.Generator, events: list[Event], area: float, kind: int, kinds: _Kinds) -> dict:
    """The drawn parameters of one target's events, as :class:`Track` keyword arguments."""
    specs: dict = {}
    for ev in events:
        if ev.type == "cut":
            k = int(rng.integers(2, 5))
            psi = rng.uniform(0, 2 * np.pi) + 2 * np.pi * (np.arange(k) + rng.uniform(-0.15, 0.15, k)) / k
            dirs = np.stack([np.cos(psi), np.sin(psi)], axis=1)
            specs["cut"] = CutSpec(
                ev,
                rng.normal(0, 0.04, 2) + 0.25 * dirs,
                dirs,
                drift=max(0.2 * float(np.sqrt(area)), 4.0),
                spins=rng.uniform(-0.08, 0.08, k),
            )
        elif ev.type == "peel":
            a = rng.uniform(0, 2 * np.pi)
            hue = kinds.hue0 + 0.381966 * kind + 0.08
            kinds.flesh.append(
                TextureRecipe(
                    "noise",
                    hsv_colors(hue + np.array([0, 0.03, -0.03]), rng.uniform(0.15, 0.45, 3), rng.uniform(0.75, 1.0, 3)),
                    3.0,
                    0.0,
                    float(rng.uniform(0, 6.3)),
                    int(rng.integers(2**31)),
                )
            )
            specs["peel"] = PeelSpec(
                ev, np.array([np.cos(a), np.sin(a)]), float(rng.uniform(0.35, 0.6)), len(kinds.flesh) - 1
            )
        elif ev.type == "shrink":
            specs["shrink"] = (ev, float(rng.uniform(0.3, 0.55)))
        elif ev.type == "morph":
            specs["morph"] = (ev, harmonic_profile(rng, rng.uniform(0.25, 0.45)))
        elif ev.type == "mold":
            specs["mold"] = (ev, float(rng.uniform(1.8, 2.8)), float(rng.uniform(0, np.pi)))
    return specs


def _target_track(
    rng: np.random.Generator,
    cfg: SynthConfig,
    i: int,
    events: list[Event],
    area: float,
    kind: int,
    kinds: _Kinds,
    placer: _Placer,
) -> Track:
    """Target ``i``: its events' parameters, its frame-0 position (in the middle 60 % of the frame) and path."""
    specs = _event_specs(rng, events, area, kind, kinds)
    start = placer.place(kinds.recipes[kind], area, 0.2, 0.8)
    return Track(i, kind, area, float(rng.uniform(0.3, 0.7)), _motion(rng, start, 0.08 * placer.wh, cfg.fps), **specs)


def _distractor_tracks(
    rng: np.random.Generator,
    cfg: SynthConfig,
    n_dis: int,
    lookalikes: list[tuple[int, float]],
    kinds: _Kinds,
    placer: _Placer,
) -> list[Track]:
    """``n_dis`` distractors of new kinds, then the look-alikes: behind the targets, or in front (placed away
    from the targets at frame 0)."""
    h, w = cfg.size
    extra = [
        (kinds.new(SHAPES), float(h * w) * float(np.exp(rng.uniform(np.log(0.008), np.log(0.06)))))
        for _ in range(n_dis)
    ] + lookalikes
    tracks = []
    for kind, area in extra:
        front = rng.random() < 0.35
        depth = float(rng.uniform(0.75, 0.95) if front else rng.uniform(0.02, 0.25))
        start = placer.place(kinds.recipes[kind], area, 0.05, 0.95)
        tracks.append(Track(0, kind, area, depth, _motion(rng, start, 0.12 * placer.wh, cfg.fps)))
    return tracks


def _draw_camera(rng: np.random.Generator, cfg: SynthConfig) -> tuple[Camera, float, tuple[float, float, float]]:
    """``(camera, zoom amplitude, light flicker (amplitude, period, phase))``, all scaled by ``cfg.camera_motion``."""
    h, w = cfg.size
    fps, cm, wh = cfg.fps, cfg.camera_motion, np.array([w, h], float)
    zoom_amp = 0.08 * cm * float(rng.uniform(0.5, 1.0))
    pan = Motion(
        p0=wh / 2,
        amps=cm * np.array([0.06, 0.02, 0.004])[:, None] * wh * rng.uniform(0.5, 1.0, (3, 2)),
        periods=fps * rng.uniform([[8.0], [2.0], [0.4]], [[20.0], [5.0], [1.0]], (3, 2)),
        phases=rng.uniform(0, 2 * np.pi, (3, 2)),
        rot0=0.0,
        spin=0.0,
        wobble=0.05 * cm * float(rng.uniform(0.3, 1.0)),
        wobble_period=float(rng.uniform(4.0, 10.0)) * fps,
    )
    camera = Camera((h, w), pan, zoom_amp, float(rng.uniform(6.0, 15.0)) * fps, float(rng.uniform(0, 2 * np.pi)))
    light = (
        0.05 * cm * float(rng.uniform(0.3, 1.0)),
        float(rng.uniform(3.0, 10.0)) * fps,
        float(rng.uniform(0, 2 * np.pi)),
    )
    return camera, zoom_amp, light


def _sprites(kinds: _Kinds, tracks: list[Track], zoom_amp: float) -> tuple[tuple[Kind, ...], tuple[np.ndarray, ...]]:
    """The kinds with their texture sprites, and the flesh sprites; each just fine enough for the largest
    on-screen size of its kind (no drawing: the recipes fix every pixel)."""
    sizes = [8] * len(kinds.recipes)
    for tr in tracks:
        need = 2 * SPRITE_EXTENT * np.sqrt(tr.area) * (1 + zoom_amp)
        sizes[tr.kind] = max(sizes[tr.kind], min(512, int(np.ceil(need))))
    kind_list = tuple(
        Kind(f"{shape}-{tex.style}-{_letters(j)}", radii, aspect, unit_polygon(radii, aspect), tex.render(sizes[j]))
        for j, (shape, radii, aspect, tex) in enumerate(kinds.recipes)
    )
    flesh_size = {tr.peel.flesh: sizes[tr.kind] for tr in tracks if tr.peel is not None}
    flesh_sprites = tuple(recipe.render(flesh_size[n]) for n, recipe in enumerate(kinds.flesh))
    return kind_list, flesh_sprites


def _letters(j: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA ... (kind names)."""
    s = ""
    j += 1
    while j:
        j, r = divmod(j - 1, 26)
        s = chr(65 + r) + s
    return s


def _occluder(
    rng: np.random.Generator, target: Track, recipes: list, kind: int, ev: Event, depth: float, fps: float
) -> Track:
    """A disc in front of everything that sweeps across ``target`` during ``ev``, sized to hide it
    completely around mid-event (its inner radius exceeds the target's outer radius plus the path's
    step per frame), then moves on so the target re-appears."""
    _, radii, aspect, _ = recipes[target.kind]
    r_t = max(
        float(np.linalg.norm(apply(piece, poly), axis=1).max())
        for t in range(ev.start, ev.end + 1)
        for poly, piece in target.pieces(t, radii, aspect)
    )
    _, o_radii, o_aspect, _ = recipes[kind]
    unit = np.linalg.norm(unit_polygon(o_radii, o_aspect), axis=1)
    r_in, q = float(unit.min()), float(unit.max() / unit.min())
    dur = max(ev.end - ev.start, 1)
    # r_occ >= 1.2 r_t + 2 + step / 2, step = 2 D / dur, D = 1.1 (q r_occ + r_t) + 2 (clear at both ends)
    r_occ = (1.2 * r_t + 2.0 + (1.1 * r_t + 2.0) / dur) / (1.0 - 1.1 * q / dur)
    dist = 1.1 * (q * r_occ + r_t) + 2.0
    a = rng.uniform(0, 2 * np.pi)
    path = Follow(
        target.motion,
        ev,
        np.array([np.cos(a), np.sin(a)]),
        dist,
        float(rng.uniform(0, 6.3)),
        float(rng.normal(0, 0.3)) / fps,
    )
    return Track(0, kind, (r_occ / r_in) ** 2, depth, path)
