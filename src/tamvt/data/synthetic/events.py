"""Motion and transformations of the synthetic objects, as pure functions of the frame index.

Nothing here keeps state between frames: every frame can be rendered on its own (random access for
training windows, lazy iteration for long videos). Coordinates:

- local: an object's own frame, in world pixels, origin at the object's centre (before rotation);
- world: the scene, in pixels of a frame seen by the camera at rest (zoom 1, no pan);
- image: pixels of the rendered frame (the camera maps world -> image).

Affines are 3x3 float64 matrices acting on column vectors (x, y, 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from tamvt.data.synthetic.shapes import clip_halfplane, squash, unit_polygon

EVENT_TYPES = ("cut", "peel", "shrink", "morph", "mold", "occlusion")


def rotation(angle: float, center: np.ndarray | None = None) -> np.ndarray:
    """3x3 rotation by ``angle`` radians about ``center`` (default the origin)."""
    c, s = np.cos(angle), np.sin(angle)
    m = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    if center is not None:
        m[:2, 2] = center - m[:2, :2] @ center
    return m


def translation(offset: np.ndarray) -> np.ndarray:
    m = np.eye(3)
    m[:2, 2] = offset
    return m


def apply(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply 3x3 affine ``m`` to ``points (N, 2)``."""
    return points @ m[:2, :2].T + m[:2, 2]


def fill(canvas: np.ndarray, points: np.ndarray, value: int) -> np.ndarray:
    """Paint polygon ``points (N, 2)`` (image px) into ``canvas (H, W)`` the way every mask is painted:
    ``cv2.fillPoly`` on the outline with 4 fractional bits (sub-pixel outlines). Returns that integer
    outline ``(N, 2)`` int32 (16 x image px)."""
    fixed = np.round(points * 16).astype(np.int32)
    cv2.fillPoly(canvas, [fixed], value, cv2.LINE_8, shift=4)
    return fixed


@dataclass(frozen=True)
class Event:
    """A transformation of target ``object`` from frame ``start`` to frame ``end`` (inclusive, 0-based):
    the object is unchanged up to ``start`` and has its final state from ``end`` on."""

    type: str
    object: int
    start: int
    end: int

    def progress(self, t: float) -> float:
        """0 up to ``start``, 1 from ``end`` on, linear in between."""
        return float(np.clip((t - self.start) / max(self.end - self.start, 1), 0.0, 1.0))

    def as_dict(self) -> dict:
        return {"type": self.type, "object": self.object, "start": self.start, "end": self.end}


class Path(Protocol):
    """Where an object is (world px) and how it is turned (radians) at frame ``t``."""

    def position(self, t: float) -> np.ndarray: ...

    def angle(self, t: float) -> float: ...


def _sines(t: float, amps: np.ndarray, periods: np.ndarray, phases: np.ndarray) -> np.ndarray:
    return (amps * np.sin(2.0 * np.pi * t / periods + phases)).sum(axis=0)


@dataclass(frozen=True)
class Motion:
    """A smooth bounded path: ``p0 + sum_j amps_j sin(2 pi t / periods_j + phases_j)`` (arrays ``(J, 2)``,
    periods in frames), rotating at ``spin`` rad/frame plus a sinusoidal wobble."""

    p0: np.ndarray
    amps: np.ndarray
    periods: np.ndarray
    phases: np.ndarray
    rot0: float
    spin: float
    wobble: float
    wobble_period: float

    def position(self, t: float) -> np.ndarray:
        return self.p0 + _sines(t, self.amps, self.periods, self.phases)

    def angle(self, t: float) -> float:
        return self.rot0 + self.spin * t + self.wobble * np.sin(2.0 * np.pi * t / self.wobble_period)


@dataclass(frozen=True)
class Follow:
    """The occluder's path: it tracks ``target`` during ``event`` and sweeps across it, from
    ``distance`` px on one side (at ``start``) through its centre (mid-event) to ``distance`` px on the
    other side (at ``end``); outside the event it keeps moving in a straight line at the same speed."""

    target: Path
    event: Event
    direction: np.ndarray
    distance: float
    rot0: float
    spin: float

    def position(self, t: float) -> np.ndarray:
        anchor = self.target.position(float(np.clip(t, self.event.start, self.event.end)))
        u = (t - self.event.start) / max(self.event.end - self.event.start, 1)
        return anchor + (2.0 * u - 1.0) * self.distance * self.direction

    def angle(self, t: float) -> float:
        return self.rot0 + self.spin * t


def _lerp(t: float, times: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values (K, 2)`` at frames ``times (K,)`` (increasing), linear in between, held outside."""
    return np.array([np.interp(t, times, values[:, 0]), np.interp(t, times, values[:, 1])])


@dataclass(frozen=True)
class Detour:
    """A target's path taken off course: ``base`` plus an offset that is linear between ``offsets (K, 2)``
    at frames ``times (K,)`` and held outside them (0 before a detour that comes back; a last offset that
    is not 0 leaves the object elsewhere for the rest of the video). The object turns as ``base`` does."""

    base: Path
    times: np.ndarray
    offsets: np.ndarray

    def position(self, t: float) -> np.ndarray:
        return self.base.position(t) + _lerp(t, self.times, self.offsets)

    def angle(self, t: float) -> float:
        return self.base.angle(t)


@dataclass(frozen=True)
class Escort:
    """A cover's path: it comes in along ``inbound`` (a unit vector) at ``speed`` px/frame, sits on
    ``target`` from frame ``start`` to ``end`` (inclusive), moving with it, then leaves along ``outbound``
    at the same speed."""

    target: Path
    start: int
    end: int
    inbound: np.ndarray
    outbound: np.ndarray
    speed: float
    rot0: float
    spin: float

    def position(self, t: float) -> np.ndarray:
        early, late = max(self.start - t, 0.0), max(t - self.end, 0.0)
        return self.target.position(t) + self.speed * (late * self.outbound - early * self.inbound)

    def angle(self, t: float) -> float:
        return self.rot0 + self.spin * t


@dataclass(frozen=True)
class Camera:
    """Egocentric-like camera: the image centre looks at world point ``center(t)`` (slow pans plus a
    small fast head-bob), with zoom ``zoom(t)`` and roll ``roll(t)``. ``frame_hw`` = (H, W)."""

    frame_hw: tuple[int, int]
    pan: Motion  # its position() is the look-at point; its angle() the roll
    zoom_amp: float
    zoom_period: float
    zoom_phase: float

    def zoom(self, t: float) -> float:
        return 1.0 + self.zoom_amp * np.sin(2.0 * np.pi * t / self.zoom_period + self.zoom_phase)

    def matrix(self, t: float) -> np.ndarray:
        """3x3 world -> image affine at frame ``t``."""
        h, w = self.frame_hw
        m = (
            rotation(self.pan.angle(t))
            @ np.diag([self.zoom(t), self.zoom(t), 1.0])
            @ translation(-self.pan.position(t))
        )
        return translation(np.array([w / 2.0, h / 2.0])) @ m


@dataclass(frozen=True)
class CutSpec:
    """Cut into ``len(seeds)`` pieces = Voronoi cells of ``seeds (k, 2)`` (unit coordinates); piece i
    drifts ``drift`` px along ``directions[i]`` and turns by ``spins[i]`` rad over the event."""

    event: Event
    seeds: np.ndarray
    directions: np.ndarray
    drift: float
    spins: np.ndarray


@dataclass(frozen=True)
class PeelSpec:
    """A line sweeps in from direction ``normal``, removing ``depth`` of the object's extent along
    it, while the texture fades to the ``flesh`` texture index."""

    event: Event
    normal: np.ndarray
    depth: float
    flesh: int


@dataclass(frozen=True)
class Track:
    """One painted object: a target (``obj_id`` 1..K) or a distractor (``obj_id`` 0).

    kind: index into the video's kinds (shape + texture); area: world px^2 at frame 0 (before any
    shrink); depth: painting order (larger = nearer, painted later); motion: a ``Path`` (``Motion``,
    ``Follow``, ``Detour``, ``Escort``). The transformation specs are ``None`` when that event does not
    happen to this object; ``shrink`` holds ``(event, final area factor)``, ``morph`` ``(event, final
    radii)``, ``mold`` ``(event, final aspect, axis)``. appears: the first frame the object is painted
    in (a decoy that turns up when the target goes away).
    """

    obj_id: int
    kind: int
    area: float
    depth: float
    motion: Path
    cut: CutSpec | None = None
    peel: PeelSpec | None = None
    shrink: tuple[Event, float] | None = None
    morph: tuple[Event, np.ndarray] | None = None
    mold: tuple[Event, float, float] | None = None
    appears: int = 0

    def pose(self, t: float) -> np.ndarray:
        """3x3 local -> world affine."""
        return translation(self.motion.position(t)) @ rotation(self.motion.angle(t))

    def scale(self, t: float) -> float:
        """Local px per unit coordinate: sqrt of the (possibly shrinking) area."""
        factor = 1.0
        if self.shrink is not None:
            ev, final = self.shrink
            factor = 1.0 + ev.progress(t) * (final - 1.0)
        return float(np.sqrt(self.area * factor))

    def pieces(
        self, t: float, radii: np.ndarray, aspect: float, outline: np.ndarray | None = None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """The object's parts at frame ``t``: ``[(polygon (n, 2) local px, piece affine 3x3)]``.

        ``radii``/``aspect`` are the object's kind outline (``outline`` = its unit polygon when already
        computed); morph, mold, peel and cut act on it here.
        """
        if t < self.appears:
            return []
        morph = self.morph
        u = morph[0].progress(t) if morph is not None else 0.0
        if morph is not None and u > 0.0:
            poly = unit_polygon((1.0 - u) * radii + u * morph[1], aspect)
        else:
            poly = unit_polygon(radii, aspect) if outline is None else outline
        s = self.scale(t)
        if self.mold is not None:
            ev, final, axis = self.mold
            poly = squash(poly, 1.0 + ev.progress(t) * (final - 1.0), axis)
        poly = poly * s
        if self.peel is not None and (u := self.peel.event.progress(t)) > 0.0:
            p = poly @ self.peel.normal
            hi, lo = float(p.max()), float(p.min())
            poly = clip_halfplane(poly, self.peel.normal, hi - u * self.peel.depth * (hi - lo))
        if self.cut is None or (u := self.cut.event.progress(t)) == 0.0 or len(poly) == 0:
            return [(poly, np.eye(3))] if len(poly) else []
        out = []
        seeds = self.cut.seeds * s
        for i, seed in enumerate(seeds):
            piece = poly
            for j, other in enumerate(seeds):
                if j != i:  # keep the side of the bisector nearer to seed i
                    nrm = other - seed
                    piece = clip_halfplane(piece, nrm, float(nrm @ (seed + other)) / 2.0)
            if len(piece) >= 3:
                m = translation(u * self.cut.drift * self.cut.directions[i]) @ rotation(u * self.cut.spins[i], seed)
                out.append((piece, m))
        return out
