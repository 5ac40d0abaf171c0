"""Outlines, textures and backgrounds of the synthetic videos (numpy + cv2; all randomness from
the ``numpy.random.Generator`` passed in, so a seed fixes every pixel).

Outlines are radial profiles r(theta) sampled at ``N_ANGLES`` fixed angles: any two outlines
interpolate vertex by vertex (that is how ``morph`` works). They become polygons of unit area,
so an object's area is set by one scale factor and does not drift when its outline changes.

Textures are square RGB sprites covering ``[-SPRITE_EXTENT, SPRITE_EXTENT]^2`` of an object's
unit-area local coordinates; the renderer warps them with the same affine as the polygon, so the
texture moves, rotates and shrinks with the object.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

N_ANGLES = 96
THETA = np.linspace(0.0, 2.0 * np.pi, N_ANGLES, endpoint=False)
SPRITE_EXTENT = 1.0  # a unit-area disc has radius 0.564; points beyond the extent get mirrored texture

SHAPES = ("disc", "blob", "polygon", "ellipse", "stick")
TEXTURES = ("stripes", "checker", "noise", "gradient", "dots", "rings")


# ----------------------------------------------------------------------------- outlines


def harmonic_profile(rng: np.random.Generator, amplitude: float, kmax: int = 5) -> np.ndarray:
    """Radial profile ``(N_ANGLES,)`` = 1 + sum_k a_k cos(k theta + phi_k), k = 2..kmax.

    The amplitudes sum to ``amplitude`` (<= 0.45) so r >= 0.55: the outline stays star-shaped
    around the origin, i.e. one connected piece that contains a disc around the centre.
    """
    ks = np.arange(2, kmax + 1)
    weights = rng.dirichlet(np.ones(len(ks)))
    phases = rng.uniform(0.0, 2.0 * np.pi, len(ks))
    radii = 1.0 + (amplitude * weights[:, None] * np.cos(ks[:, None] * THETA[None] + phases[:, None])).sum(0)
    return radii / radii.mean()


def random_profile(shape: str, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """``(radii (N_ANGLES,), aspect)`` for a shape family of ``SHAPES``; aspect = long/short axis."""
    if shape == "disc":
        return np.ones(N_ANGLES), 1.0
    if shape == "blob":
        return harmonic_profile(rng, rng.uniform(0.15, 0.4)), float(rng.uniform(1.0, 1.4))
    if shape == "polygon":
        n = int(rng.integers(3, 8))
        phase = rng.uniform(0.0, 2.0 * np.pi / n)
        sector = np.mod(THETA - phase, 2.0 * np.pi / n) - np.pi / n
        radii = np.cos(np.pi / n) / np.cos(sector)
        radii = 0.85 * radii + 0.15 * radii.mean()  # round the corners a little
        return radii / radii.mean(), 1.0
    if shape == "ellipse":
        return np.ones(N_ANGLES), float(rng.uniform(1.4, 2.2))
    if shape == "stick":  # a rounded rectangle (superellipse p = 4): tools, hands, utensils
        c, s = np.abs(np.cos(THETA)), np.abs(np.sin(THETA))
        radii = (c**4 + s**4) ** -0.25
        return radii / radii.mean(), float(rng.uniform(2.5, 4.0))
    raise ValueError(f"unknown shape {shape!r}")


def squash(points: np.ndarray, aspect: float, axis: float) -> np.ndarray:
    """Stretch ``points (N, 2)`` by sqrt(aspect) along direction ``axis`` (radians) and shrink by the
    same factor across it: an area-preserving map (determinant 1)."""
    if aspect == 1.0:
        return points
    c, s = np.cos(axis), np.sin(axis)
    rot = np.array([[c, -s], [s, c]])
    k = np.sqrt(aspect)
    return points @ rot @ np.diag([k, 1.0 / k]) @ rot.T


def polygon_area(points: np.ndarray) -> float:
    """Unsigned shoelace area of a closed polygon ``(N, 2)``."""
    if len(points) < 3:
        return 0.0
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(x[:-1] @ y[1:] - y[:-1] @ x[1:] + x[-1] * y[0] - y[-1] * x[0]))


def unit_polygon(radii: np.ndarray, aspect: float = 1.0) -> np.ndarray:
    """Polygon ``(N_ANGLES, 2)`` of area 1 from a radial profile, stretched along x by ``aspect``."""
    pts = np.stack([radii * np.cos(THETA), radii * np.sin(THETA)], axis=1)
    pts = squash(pts, aspect, 0.0)
    return pts / np.sqrt(polygon_area(pts))


def clip_halfplane(points: np.ndarray, normal: np.ndarray, offset: float) -> np.ndarray:
    """Keep the part of polygon ``points (N, 2)`` where ``p . normal <= offset`` (Sutherland-Hodgman
    against one line; works for non-convex polygons, whose disconnected parts may come back
    joined by zero-width edges along the line). Returns ``(M, 2)``, M = 0 when nothing is left."""
    d = points @ normal - offset
    inside = d <= 0.0
    if inside.all():
        return points
    if not inside.any():
        return points[:0]
    nxt, d_nxt = np.roll(points, -1, axis=0), np.roll(d, -1)
    crossing = inside != np.roll(inside, -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(crossing, d / (d - d_nxt), 0.0)
    cross_pts = points + frac[:, None] * (nxt - points)
    # Each vertex emits itself when inside, then the crossing point of its outgoing edge.
    cand = np.stack([points, cross_pts], axis=1).reshape(-1, 2)
    keep = np.stack([inside, crossing], axis=1).reshape(-1)
    return cand[keep]


# ----------------------------------------------------------------------------- colours and textures


def hsv_colors(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """RGB ``(n, 3)`` float32 in 0..255 from hue (turns, 0..1), saturation and value (0..1)."""
    hsv = np.stack([np.mod(h, 1.0) * 180.0, np.clip(s, 0, 1) * 255.0, np.clip(v, 0, 1) * 255.0], axis=-1)
    rgb = cv2.cvtColor(np.round(hsv).astype(np.uint8)[None], cv2.COLOR_HSV2RGB)[0]
    return rgb.astype(np.float32)


def _ramp(t: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """Piecewise-linear colour ramp: ``t (H, W)`` in 0..1 through ``colors (n, 3)`` -> ``(H, W, 3)``."""
    n = len(colors)
    x = np.clip(t, 0.0, 1.0) * (n - 1)
    i = np.minimum(x.astype(np.int32), n - 2)
    w = (x - i)[..., None]
    return colors[i] * (1.0 - w) + colors[i + 1] * w


@dataclass(frozen=True)
class TextureRecipe:
    """Everything that defines a texture, so look-alike instances share it exactly.

    style: one of ``TEXTURES``; colors ``(n, 3)`` RGB 0..255; freq: pattern cycles per local unit;
    angle: pattern orientation (radians); light: shading direction (radians); seed: noise seed.
    """

    style: str
    colors: np.ndarray
    freq: float
    angle: float
    light: float
    seed: int

    def render(self, size: int) -> np.ndarray:
        """The sprite ``(size, size, 3)`` uint8 RGB over ``[-SPRITE_EXTENT, SPRITE_EXTENT]^2``."""
        rng = np.random.default_rng(self.seed)
        e = SPRITE_EXTENT
        axis = (np.arange(size, dtype=np.float32) + 0.5) * (2 * e / size) - e
        u, v = np.meshgrid(axis, axis)
        ca, sa = np.cos(self.angle), np.sin(self.angle)
        pu, pv = u * ca + v * sa, -u * sa + v * ca
        f, c = self.freq, self.colors
        if self.style == "stripes":
            w = np.clip(np.sin(2 * np.pi * f * pu) * 3.0 + 0.5, 0, 1)
        elif self.style == "checker":
            w = np.clip(np.sin(2 * np.pi * f * pu) * np.sin(2 * np.pi * f * pv) * 4.0 + 0.5, 0, 1)
        elif self.style == "noise":
            n = max(2, int(round(2 * e * f)) + 1)
            grid = rng.random((n, n)).astype(np.float32)
            w = cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
            w = (w - w.min()) / max(float(w.max() - w.min()), 1e-6)
        elif self.style == "gradient":
            w = 0.5 + 0.5 * pu / e
        elif self.style == "dots":
            spacing = 1.0 / f
            du = np.mod(pu, spacing) - spacing / 2
            dv = np.mod(pv, spacing) - spacing / 2
            w = np.clip((0.3 * spacing - np.sqrt(du**2 + dv**2)) * (8.0 / spacing) + 0.5, 0, 1)
        elif self.style == "rings":
            w = np.clip(np.sin(2 * np.pi * f * np.sqrt(u**2 + v**2)) * 3.0 + 0.5, 0, 1)
        else:
            raise ValueError(f"unknown texture style {self.style!r}")
        img = _ramp(w, c)
        # Shading (light from one side, darker rim) gives a 3-D look; grain breaks flat colour.
        shade = 1.0 + 0.22 * (u * np.cos(self.light) + v * np.sin(self.light)) / e - 0.25 * (u**2 + v**2) / e**2
        img = img * shade[..., None] + rng.normal(0.0, 5.0, img.shape).astype(np.float32)
        return np.clip(img, 0, 255).astype(np.uint8)


def random_texture(rng: np.random.Generator, hue: float, style: str | None = None) -> TextureRecipe:
    """A texture recipe with main hue ``hue`` (turns) and contrasting secondary colours."""
    style = style or str(rng.choice(TEXTURES))
    n = 2 if style in ("stripes", "checker", "dots", "rings") else 3
    hues = hue + np.concatenate([[0.0], rng.uniform(0.12, 0.5, n - 1) * rng.choice([-1, 1], n - 1)])
    sats = rng.uniform(0.45, 1.0, n)
    vals = np.concatenate([[rng.uniform(0.55, 1.0)], rng.uniform(0.2, 0.95, n - 1)])
    return TextureRecipe(
        style=style,
        colors=hsv_colors(hues, sats, vals),
        freq=float(rng.uniform(1.5, 4.5)),
        angle=float(rng.uniform(0, np.pi)),
        light=float(rng.uniform(0, 2 * np.pi)),
        seed=int(rng.integers(2**31)),
    )


# ----------------------------------------------------------------------------- background


def make_background(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A cluttered scene ``(height, width, 3)`` uint8 RGB: a smooth muted colour field, a few large
    patterned surfaces (tables, tiles, walls) and many small coloured primitives."""
    base_cols = hsv_colors(rng.uniform(0, 1, 3), rng.uniform(0.1, 0.45, 3), rng.uniform(0.3, 0.8, 3))
    # The field is smooth: colour it at 1/4 resolution and upsample.
    small = (max(2, width // 4), max(2, height // 4))
    field = cv2.resize(rng.random((4, 6)).astype(np.float32), small, interpolation=cv2.INTER_CUBIC)
    img = cv2.resize(
        np.clip(_ramp(field, base_cols), 0, 255).astype(np.uint8), (width, height), interpolation=cv2.INTER_LINEAR
    )
    scale = float(np.sqrt(height * width))

    for _ in range(int(rng.integers(3, 7))):  # large surfaces with line patterns
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        bw, bh = rng.uniform(0.2, 0.6) * width, rng.uniform(0.2, 0.6) * height
        box = cv2.boxPoints(((cx, cy), (bw, bh), float(rng.uniform(-30, 30))))
        x0, y0 = np.maximum(np.floor(box.min(axis=0)).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(box.max(axis=0)).astype(int) + 1, (width, height))
        color = hsv_colors(rng.uniform(0, 1, 1), rng.uniform(0.1, 0.6, 1), rng.uniform(0.3, 0.9, 1))[0]
        striped, step, ang = rng.random() < 0.7, rng.uniform(0.02, 0.06) * scale, rng.uniform(0, np.pi)
        shade = rng.uniform(0.5, 1.4)
        if x1 <= x0 or y1 <= y0:
            continue
        origin = np.array([x0, y0], np.float32)
        surf = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(surf, [np.round(box - origin).astype(np.int32)], 1)
        layer = np.empty((y1 - y0, x1 - x0, 3), np.uint8)
        layer[:] = color.astype(np.uint8)
        if striped:
            line_col = tuple(int(x) for x in np.clip(color * shade, 0, 255))
            half = float(np.hypot(bw, bh)) / 2
            d = np.array([np.cos(ang), np.sin(ang)]) * half
            nrm = np.array([-np.sin(ang), np.cos(ang)])
            for k in np.arange(-half, half, step):
                p = np.array([cx, cy]) - origin + nrm * k
                cv2.line(
                    layer,
                    tuple(int(v) for v in np.round(p - d)),
                    tuple(int(v) for v in np.round(p + d)),
                    line_col,
                    max(1, int(step * 0.2)),
                )
        cv2.copyTo(layer, surf, img[y0:y1, x0:x1])

    n_small = int(height * width / 700)
    cols = hsv_colors(rng.uniform(0, 1, n_small), rng.uniform(0.0, 0.9, n_small), rng.uniform(0.1, 1.0, n_small))
    for i in range(n_small):  # clutter
        col = tuple(int(x) for x in cols[i])
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        r = max(1, int(rng.uniform(0.004, 0.03) * scale))
        kind = rng.integers(5)
        thick = -1 if rng.random() < 0.7 else int(rng.integers(1, 3))
        if kind == 0:
            cv2.circle(img, (x, y), r, col, thick, cv2.LINE_AA)
        elif kind == 1:
            box = cv2.boxPoints(((x, y), (2 * r, r * rng.uniform(0.5, 2.5)), float(rng.uniform(0, 180))))
            cv2.fillPoly(img, [np.round(box).astype(np.int32)], col, cv2.LINE_AA)
        elif kind == 2:
            cv2.ellipse(img, (x, y), (r, max(1, r // 2)), float(rng.uniform(0, 180)), 0, 360, col, thick, cv2.LINE_AA)
        elif kind == 3:
            dx, dy = rng.normal(0, 2.5 * r, 2)
            cv2.line(img, (x, y), (int(x + dx), int(y + dy)), col, int(rng.integers(1, 4)), cv2.LINE_AA)
        else:
            tri = np.array([x, y]) + rng.normal(0, r, (3, 2))
            cv2.fillPoly(img, [np.round(tri).astype(np.int32)], col, cv2.LINE_AA)
    return cv2.GaussianBlur(img, (3, 3), 0.8)
