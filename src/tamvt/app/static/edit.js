// Editing the current frame's mask with the pointer: brush, eraser, polygon, fill, undo; each edit is
// sent to the server (debounced) as the frame's painted mask. The page (app.js) hands `editor` its state S,
// the canvas `view`, its zoom and pan `viewer` (view.js: pointer events to image pixels) and its helpers, and wires the tools it returns to the canvas, the buttons and the keys.
import { fill, line, polygon } from "./paint.js";

export function editor({ S, view, viewer, api, message, sessionUrl, render }) {
  function editable() {  // the current frame's mask, ready to change (the previous state goes on its undo stack)
    const k = S.cur;
    const entry = S.masks.get(k) || { mask: null, source: "none" };
    const mask = entry.mask ? entry.mask.slice() : new Uint8Array(S.video.width * S.video.height);
    const stack = S.undo.get(k) || [];
    stack.push(entry.mask ? entry.mask.slice() : new Uint8Array(mask.length));
    if (stack.length > 50) stack.shift();
    S.undo.set(k, stack);
    S.masks.set(k, { mask, source: "annotation" });
    return mask;
  }

  function edited(k) {
    S.annotated.add(k);
    scheduleSave(k);
    render();
  }

  function scheduleSave(k) {
    clearTimeout(S.saves.get(k));
    S.saves.set(k, setTimeout(() => save(k), 250));
    document.body.dataset.saving = String(S.saves.size + S.inflight);
  }

  async function save(k) {
    clearTimeout(S.saves.get(k));
    S.saves.delete(k);
    S.inflight++;
    try {
      await api("PUT", sessionUrl(`/masks/${k}`), S.masks.get(k).mask);
    } catch (err) {
      message(`frame ${k} not saved: ${err.message}`, "error");
    } finally {
      S.inflight--;
      document.body.dataset.saving = String(S.saves.size + S.inflight);
    }
  }

  async function flushSaves() {
    await Promise.all([...S.saves.keys()].map(save));
    while (S.inflight > 0) await new Promise((r) => setTimeout(r, 20));
  }

  // One edit of the current frame's mask by `change(mask)` (in place): undone by Ctrl+Z and saved as a
  // brush stroke is (the Box and Click tools keep their proposal this way, prompt.js).
  function commit(change) {
    change(editable());
    edited(S.cur);
  }

  function undo() {
    const stack = S.undo.get(S.cur);
    if (!stack || !stack.length) { message("nothing to undo on this frame"); return; }
    S.masks.set(S.cur, { mask: stack.pop(), source: "annotation" });
    edited(S.cur);
  }

  const toImage = (ev) => viewer.toImage(ev);  // image pixels under the pointer, at any zoom and pan

  function closePolygon() {
    const pts = S.poly.filter((p, i, a) => i === 0 || p[0] !== a[i - 1][0] || p[1] !== a[i - 1][1]);
    S.poly = [];
    if (pts.length < 3) { message("a polygon needs 3 points or more"); render(); return; }
    polygon(editable(), view.width, view.height, pts, S.obj);
    edited(S.cur);
  }

  function onPointerDown(ev) {
    if (!S.video || ev.button !== 0) return;
    view.focus();
    const [x, y] = toImage(ev);
    const { width: w, height: h } = view;
    if (S.tool === "brush" || S.tool === "eraser") {
      view.setPointerCapture(ev.pointerId);
      const mask = editable();
      S.stroke = { last: [x, y], mask };
      paintAt(mask, x, y, x, y);
      render();
    } else if (S.tool === "polygon") {
      const first = S.poly[0];
      const near = first && Math.hypot(first[0] - x, first[1] - y) * viewer.scale() < 8;  // 8 screen px
      if (S.poly.length >= 3 && near) closePolygon();
      else { S.poly.push([x, y]); render(); }
    } else if (S.tool === "fill") {
      const before = S.masks.get(S.cur);
      const mask = editable();
      const n = fill(mask, w, h, x, y, S.obj, frameColours(), S.fillTolerance ?? 32, 0.5);
      if (n <= 0) {  // nothing filled: the frame's mask and undo stack as they were
        S.undo.get(S.cur).pop();
        if (before) S.masks.set(S.cur, before); else S.masks.delete(S.cur);
        if (n < 0) message(`Fill refused: the region of similar colour covers ${(100 * -n / (w * h)).toFixed(1)} % of the frame (over half); paint it with the brush or a polygon`, "error");
        return;
      }
      edited(S.cur);
    }
  }

  function frameColours() {  // the current frame's RGBA bytes (for Fill's colour tolerance), or null
    const img = S.images.get(S.cur);
    if (!img || !img.complete || !img.naturalWidth) return null;
    const c = document.createElement("canvas");
    c.width = view.width; c.height = view.height;
    const g = c.getContext("2d", { willReadFrequently: true });
    g.drawImage(img, 0, 0, c.width, c.height);
    return g.getImageData(0, 0, c.width, c.height).data;
  }

  function onDoubleClick() {
    // a double click on one spot closes the polygon; its two clicks added that spot twice. Two quick clicks
    // on different spots are two vertices (the browser may report them as a double click too).
    const n = S.poly.length;
    if (S.tool !== "polygon" || n < 4) return;
    const [a, b] = [S.poly[n - 2], S.poly[n - 1]];
    if (Math.hypot(a[0] - b[0], a[1] - b[1]) * viewer.scale() <= 2) closePolygon();
  }

  function paintAt(mask, x0, y0, x1, y1) {
    const erase = S.tool === "eraser";
    line(mask, view.width, view.height, x0, y0, x1, y1, S.size / 2, erase ? 0 : S.obj, erase ? S.obj : undefined);
  }

  function onPointerMove(ev) {
    const p = toImage(ev);
    S.hover = p;
    if (S.stroke) {
      paintAt(S.stroke.mask, ...S.stroke.last, ...p);
      S.stroke.last = p;
    }
    render();
  }

  function onPointerUp() {
    if (!S.stroke) return;
    S.stroke = null;
    edited(S.cur);
  }

  return { undo, commit, flushSaves, closePolygon, onPointerDown, onPointerMove, onPointerUp, onDoubleClick };
}
