// Navigation: the view of the canvas (zoom, pan, fit, and the one mapping between the screen and the image),
// playback at the video's frame rate, and the frame-number box. The pure functions at the top hold the
// arithmetic (tested under node); `viewport`, `player` and `frameBox` attach it to the page (app.js wires them).
//
// A view is {scale, x, y}: image pixel (ix, iy) appears at (x + ix * scale, y + iy * scale) screen pixels
// from the top-left corner of the canvas box's content (scale: screen pixels per image pixel).

export const MAX_SCALE = 16;  // screen px per image px at most (or 8 times the fit, for a frame smaller than the box)

// The view that shows the whole image (w x h) centred in a box (bw x bh).
export function fitView(w, h, bw, bh) {
  const scale = Math.min(bw / w, bh / h);
  return { scale, x: (bw - w * scale) / 2, y: (bh - h * scale) / 2 };
}

// Keep the image on screen: along each axis it is centred when it is smaller than the box, and it leaves
// no empty margin when it is larger.
export function clampView(v, w, h, bw, bh) {
  const axis = (t, size, room) => (size <= room ? (room - size) / 2 : Math.min(0, Math.max(room - size, t)));
  return { scale: v.scale, x: axis(v.x, w * v.scale, bw), y: axis(v.y, h * v.scale, bh) };
}

// Zoom by `factor` about the screen point (px, py), which keeps showing the same image point; the scale
// stays within [fit, max(MAX_SCALE, 8 * fit)].
export function zoomAt(v, factor, px, py, w, h, bw, bh) {
  const fit = fitView(w, h, bw, bh).scale;
  const scale = Math.min(Math.max(MAX_SCALE, 8 * fit), Math.max(fit, v.scale * factor));
  const k = scale / v.scale;
  return clampView({ scale, x: px - (px - v.x) * k, y: py - (py - v.y) * k }, w, h, bw, bh);
}

// Screen point (box content pixels) -> image point (continuous image pixels), and back.
export function screenToImage(v, px, py) {
  return [(px - v.x) / v.scale, (py - v.y) / v.scale];
}

export function imageToScreen(v, ix, iy) {
  return [v.x + ix * v.scale, v.y + iy * v.scale];
}

// The wheel's zoom factor: one notch (deltaY 100 px) zooms by 2^(1/3); lines and pages count as 40 / 800 px.
export function wheelFactor(deltaY, deltaMode = 0) {
  const px = deltaY * [1, 40, 800][deltaMode];
  return 2 ** (-px / 300);
}

// What the frame-number box's `text` asks for, in a video of `frames` frames: {frame} and a `note` when the
// number was clamped, or {error}.
export function parseFrame(text, frames) {
  const t = String(text).trim();
  const last = frames - 1;
  if (!/^[+-]?\d+$/.test(t)) return { error: `"${t}" is not a frame number: type one from 0 to ${last}` };
  const n = Number(t);
  if (n < 0) return { frame: 0, note: `frames start at 0: showing frame 0` };
  if (n > last) return { frame: last, note: `the last frame is ${last}: showing it` };
  return { frame: n };
}

// Frames per second for playback: the video's own rate, else 24; at most 60 (the screen's rate).
export function playbackFps(fps) {
  const f = Number(fps);
  return Number.isFinite(f) && f > 0 ? Math.min(60, Math.max(1, f)) : 24;
}

// ---- the page --------------------------------------------------------------------------------------------

// The canvas (`canvas`, at the image's resolution) shown through the box (`box`, its clipping parent) under a
// view; wheel zoom about the cursor, pan by dragging with the middle button (or the left one when `panning()`),
// fit; the scale is shown in `label`. `onZoom(scale)` is called (before the next paint) when the scale changed: outlines are drawn in screen pixels.
export function viewport({ box, canvas, label, panning, onZoom }) {
  let w = 1, h = 1, bw = 1, bh = 1, fitted = true, drag = null, redraw = 0;
  let v = { scale: 1, x: 0, y: 0 };

  function apply(next) {
    const zoomed = next.scale !== v.scale;
    v = next;
    fitted = v.scale <= fitView(w, h, bw, bh).scale * (1 + 1e-9);
    canvas.style.transform = `translate(${v.x}px, ${v.y}px) scale(${v.scale})`;
    canvas.classList.toggle("pixelated", !fitted && v.scale > 1);  // zoomed in: the mask's pixels as they are
    if (label) label.textContent = `${Math.round(100 * v.scale)} %`;
    if (zoomed && onZoom && !redraw) {  // once per displayed frame: a wheel sends many events
      redraw = requestAnimationFrame(() => { redraw = 0; onZoom(v.scale); });
    }
  }

  // Size the box for an image of w x h (its height: the whole frame at the width available) and fit the image,
  // or keep the zoom and clamp the pan when zoomed in.
  function layout(width, height) {
    w = width; h = height;
    canvas.style.width = `${w}px`;
    canvas.style.height = `${h}px`;
    bw = box.clientWidth;
    const availH = Math.max(200, window.innerHeight - box.getBoundingClientRect().top - 110);
    const border = box.offsetHeight - box.clientHeight;
    bh = Math.ceil(h * Math.min(bw / w, availH / h));
    box.style.height = `${bh + border}px`;
    apply(fitted ? fitView(w, h, bw, bh) : clampView(v, w, h, bw, bh));
  }

  const fit = () => apply(fitView(w, h, bw, bh));
  const actual = () => apply(zoomAt(v, 1 / v.scale, bw / 2, bh / 2, w, h, bw, bh));  // 1:1 about the centre
  const zoomBy = (factor) => apply(zoomAt(v, factor, bw / 2, bh / 2, w, h, bw, bh));

  function boxPoint(ev) {  // an event's position in box content pixels
    const r = box.getBoundingClientRect();
    return [ev.clientX - r.left - box.clientLeft, ev.clientY - r.top - box.clientTop];
  }

  // The one mapping from a pointer event to image pixels (continuous), for every tool.
  const toImage = (ev) => screenToImage(v, ...boxPoint(ev));

  box.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    apply(zoomAt(v, wheelFactor(ev.deltaY, ev.deltaMode), ...boxPoint(ev), w, h, bw, bh));
  }, { passive: false });
  box.addEventListener("pointerdown", (ev) => {
    if (!(ev.button === 1 || (ev.button === 0 && panning()))) return;
    ev.preventDefault();
    box.setPointerCapture(ev.pointerId);
    drag = { id: ev.pointerId, x: ev.clientX, y: ev.clientY, v };
    box.classList.add("panning");
  });
  box.addEventListener("pointermove", (ev) => {
    if (!drag || ev.pointerId !== drag.id) return;
    const next = { scale: drag.v.scale, x: drag.v.x + ev.clientX - drag.x, y: drag.v.y + ev.clientY - drag.y };
    apply(clampView(next, w, h, bw, bh));
  });
  const endDrag = (ev) => {
    if (!drag || ev.pointerId !== drag.id) return;
    drag = null;
    box.classList.remove("panning");
  };
  box.addEventListener("pointerup", endDrag);
  box.addEventListener("pointercancel", endDrag);
  box.addEventListener("mousedown", (ev) => { if (ev.button === 1) ev.preventDefault(); });  // no autoscroll

  return { layout, fit, actual, zoomBy, toImage, scale: () => v.scale, view: () => ({ ...v }) };
}

// Play / pause: steps through the frames with `goto` (which shows each frame and its mask) at the video's
// frame rate; a frame is shown before the next is asked for, so a slow server slows playback, never skips.
// Stops at the last frame; play from the last frame starts again at the first. `onState(playing)` follows it.
export function player({ S, goto, message, onState }) {
  let run = 0, playing = false, timer = null;  // `run` numbers each play: a step of an earlier one stops

  async function tick(id) {
    timer = null;
    const t0 = performance.now();
    try {
      await goto(S.cur + 1);
    } catch (err) {
      if (id === run) { pause(); message(err.message, "error"); }
      return;
    }
    if (id !== run) return;
    if (S.cur >= S.video.frames - 1) { pause(); return; }
    timer = setTimeout(() => tick(id), Math.max(0, 1000 / playbackFps(S.video.fps) - (performance.now() - t0)));
  }

  async function play() {
    if (playing || !S.video || S.video.frames < 2) return;
    const id = ++run;
    playing = true;
    onState(true);
    if (S.cur >= S.video.frames - 1) {
      try { await goto(0); } catch (err) { pause(); throw err; }
    }
    if (id === run) timer = setTimeout(() => tick(id), 1000 / playbackFps(S.video.fps));
  }

  function pause() {
    run++;
    if (timer) clearTimeout(timer);
    timer = null;
    if (!playing) return;
    playing = false;
    onState(false);
  }

  return { play, pause, toggle: () => (playing ? pause() : play()), playing: () => playing };
}

// The frame-number box (a text input): Enter goes to the typed frame (clamped, with a note; a message for
// anything that is not a number) and hands the keys back to the canvas; Escape or leaving it shows the
// current frame again. `show(k)` puts the current frame in it, unless the user is typing there.
export function frameBox({ input, S, goto, message, done }) {
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") {
      ev.preventDefault();
      if (!S.video) return;
      const r = parseFrame(input.value, S.video.frames);
      if (r.error) { message(r.error, "error"); input.select(); return; }
      if (r.note) message(r.note);
      done();
      goto(r.frame).catch((err) => message(err.message, "error"));
    } else if (ev.key === "Escape") {
      ev.preventDefault();
      done();
    }
  });
  input.addEventListener("blur", () => { input.value = String(S.cur); });
  return { show: (k) => { if (document.activeElement !== input) input.value = String(k); } };
}
