// Mask editing and drawing: pure functions on index masks (Uint8Array of W*H object ids, row by row).
// Coordinates are in image pixels, continuous: pixel (x, y) covers [x, x+1) x [y, y+1).

// Set every pixel whose centre lies in the disc (cx, cy, r) to `value`; with `only`, touch only the
// pixels holding that id (the eraser removes the selected object, not its neighbours).
export function disc(mask, w, h, cx, cy, r, value, only) {
  const r2 = r * r;
  const x0 = Math.max(0, Math.floor(cx - r)), x1 = Math.min(w - 1, Math.ceil(cx + r));
  const y0 = Math.max(0, Math.floor(cy - r)), y1 = Math.min(h - 1, Math.ceil(cy + r));
  for (let y = y0; y <= y1; y++) {
    const dy = y + 0.5 - cy;
    for (let x = x0; x <= x1; x++) {
      const dx = x + 0.5 - cx;
      if (dx * dx + dy * dy <= r2) {
        const i = y * w + x;
        if (only === undefined || mask[i] === only) mask[i] = value;
      }
    }
  }
}

// A brush stroke from (x0, y0) to (x1, y1): discs every half radius along the segment.
export function line(mask, w, h, x0, y0, x1, y1, r, value, only) {
  const steps = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0) / Math.max(0.5, r / 2)));
  for (let s = 0; s <= steps; s++) {
    const t = s / steps;
    disc(mask, w, h, x0 + (x1 - x0) * t, y0 + (y1 - y0) * t, r, value, only);
  }
}

// Fill the polygon `points` ([[x, y], ...]) with `value`: the canvas rasterises it, a pixel is inside
// when more than half of it is covered.
export function polygon(mask, w, h, points, value) {
  if (points.length < 3) return;
  const c = document.createElement("canvas");
  c.width = w; c.height = h;
  const g = c.getContext("2d", { willReadFrequently: true });
  g.fillStyle = "#fff";
  g.beginPath();
  g.moveTo(points[0][0], points[0][1]);
  for (const [x, y] of points.slice(1)) g.lineTo(x, y);
  g.closePath();
  g.fill();
  const a = g.getImageData(0, 0, w, h).data;
  for (let i = 0; i < w * h; i++) if (a[4 * i + 3] >= 128) mask[i] = value;
}

// Flood fill: the 4-connected region around (x, y) of pixels with the clicked pixel's id and, when `rgb`
// (the frame's RGBA bytes, W*H*4, e.g. ImageData.data) is given, a colour within `tolerance` (RGB distance,
// 0..441) of the clicked pixel's colour, becomes `value`. The fill stops at the region's edge: it never
// leaves the connected region of similar colour. A region larger than `maxFraction` of the frame is refused:
// nothing changes and the function returns minus its pixel count. Else it returns the pixels filled.
export function fill(mask, w, h, x, y, value, rgb = null, tolerance = 32, maxFraction = 0.5) {
  x = Math.floor(x); y = Math.floor(y);
  if (x < 0 || y < 0 || x >= w || y >= h) return 0;
  const seed = y * w + x, target = mask[seed];
  if (target === value) return 0;
  const t2 = tolerance * tolerance;
  const r0 = rgb ? rgb[4 * seed] : 0, g0 = rgb ? rgb[4 * seed + 1] : 0, b0 = rgb ? rgb[4 * seed + 2] : 0;
  const inside = (i) => {
    if (mask[i] !== target) return false;
    if (!rgb) return true;
    const dr = rgb[4 * i] - r0, dg = rgb[4 * i + 1] - g0, db = rgb[4 * i + 2] - b0;
    return dr * dr + dg * dg + db * db <= t2;
  };
  const seen = new Uint8Array(w * h), region = new Int32Array(w * h);
  let top = 0, count = 0;
  region[top++] = seed;
  seen[seed] = 1;
  while (count < top) {  // region[0..top) is the queue and, at the end, the region
    const i = region[count++];
    const px = i % w;
    for (const j of [px > 0 ? i - 1 : -1, px < w - 1 ? i + 1 : -1, i >= w ? i - w : -1, i < w * (h - 1) ? i + w : -1]) {
      if (j >= 0 && !seen[j]) { seen[j] = 1; if (inside(j)) region[top++] = j; }
    }
  }
  if (count > maxFraction * w * h) return -count;
  for (let k = 0; k < count; k++) mask[region[k]] = value;
  return count;
}

// The overlay of `mask` into `image` (an ImageData W x H, RGBA): each visible object tinted with its
// colour at `opacity`, its contour (pixels with a 4-neighbour of another id) in full colour.
export function overlay(image, mask, w, h, colors, visible, opacity) {
  const d = image.data;
  const a = Math.round(255 * opacity);
  d.fill(0);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x, id = mask[i];
      if (id === 0 || !visible(id)) continue;
      const edge = (x > 0 && mask[i - 1] !== id) || (x < w - 1 && mask[i + 1] !== id) ||
                   (y > 0 && mask[i - w] !== id) || (y < h - 1 && mask[i + w] !== id);
      const c = colors[id] || [255, 255, 255];
      d[4 * i] = c[0]; d[4 * i + 1] = c[1]; d[4 * i + 2] = c[2];
      d[4 * i + 3] = edge ? 255 : a;
    }
  }
  return image;
}
