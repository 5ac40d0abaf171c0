// The page: one session (a video on the server), its frames and masks, the painting tools, propagation
// with live progress (server-sent events) and the exports. Masks travel as raw bytes, one id per pixel.
// The page's one script (a module, loaded by index.html): it imports the drawing from paint.js and the
// editing tools from edit.js, the view (zoom, pan), playback and the frame-number box from view.js,
// the saved sessions (Recent, keep-alive, Back) from recent.js, the Box and Click tools from prompt.js.
import { editor } from "./edit.js";
import { showNotices } from "./notices.js";
import { overlay } from "./paint.js";
import { prompter } from "./prompt.js";
import { frameBox, player, viewport } from "./view.js";
import { recent, sidFromUrl } from "./recent.js";
import { timeline } from "./timeline.js";

const $ = (id) => document.getElementById(id);

// The page's state; exported so that the browser's console (and the browser test) can read it with
// `await import("/static/app.js")`.
export const S = {
  sid: null, video: null, colors: [], maxObjects: 10,
  cur: 0, obj: 1, objects: [1], hidden: new Set(),
  tool: "brush", size: 10, fillTolerance: 32, opacity: 0.5, showOverlay: true,
  images: new Map(),      // frame -> HTMLImageElement (decoded)
  masks: new Map(),       // frame -> {mask: Uint8Array | null, source: "annotation" | "result" | "none"}
  annotated: new Set(), results: new Set(),
  undo: new Map(),        // frame -> [Uint8Array, ...]
  saves: new Map(),       // frame -> timer of a pending save
  inflight: 0,            // saves being sent
  stroke: null,           // {last: [x, y]} while painting
  poly: [],               // polygon vertices (image px)
  hover: null,            // pointer position (image px), for the brush outline
  proposal: null,         // the Box / Click tools' proposal: {frame, obj, mask (W*H 0 / 1), box, positive, negative}
  drag: null,             // {from, to} (image px) while a box is dragged
  job: null, events: null,
};

const view = $("view");
const ctx = view.getContext("2d");
const overlayCanvas = document.createElement("canvas");
// the canvas's zoom and pan; exported, as S, for the browser's console and the browser test
export const viewer = viewport({
  box: $("canvas-box"), canvas: view, label: $("zoom-label"), panning: () => S.tool === "pan", onZoom: () => render(),
});

// ---- messages and the API ------------------------------------------------------------------------

function message(text, kind = "info") {
  const m = $("message");
  m.textContent = text;
  m.className = text ? kind : "";
}

async function api(method, url, body) {
  const opts = { method, headers: {} };
  if (body instanceof Uint8Array || body instanceof Blob) {
    opts.body = body;
    opts.headers["Content-Type"] = "application/octet-stream";
  } else if (body !== undefined) {
    opts.body = JSON.stringify(body);
    opts.headers["Content-Type"] = "application/json";
  }
  let r;
  try {
    r = await fetch(url, opts);
  } catch (err) {
    throw new Error("the server does not answer (is `tamvt app` still running?)");
  }
  if (!r.ok) {
    let text = `${r.status} ${r.statusText}`;
    try { const j = await r.json(); if (j.error) text = j.error; } catch (_) { /* not JSON */ }
    const err = new Error(text);
    err.status = r.status;
    throw err;
  }
  return r;
}

const sessionUrl = (path = "") => `/api/sessions/${S.sid}${path}`;

function guard(fn) {  // run an async UI action; its error goes to the message line
  return async (...args) => {
    try { await fn(...args); } catch (err) { message(err.message, "error"); }
  };
}

const { undo, commit, flushSaves, closePolygon, onPointerDown, onPointerMove, onPointerUp, onDoubleClick } =
  editor({ S, view, viewer, api, message, sessionUrl, render });
const prompts = prompter({ S, view, viewer, api, message, sessionUrl, render, flushSaves, commit });
const playback = player({
  S, goto, message,
  onState: (on) => {
    document.body.dataset.playing = on ? "1" : "0";
    $("play").textContent = on ? "❚❚ Pause" : "▶ Play";
  },
});
const frameNumber = frameBox({ input: $("frame-box"), S, goto, message, done: () => view.focus() });
const saved = recent({ S, api, message, guard, reopen: (id, push = false) => openSaved(id, push) });
const { drawMarks, removeAnnotation } = timeline({ S, api, sessionUrl, goto, message, flushSaves });

// ---- opening a video -----------------------------------------------------------------------------

async function loadSources() {
  const info = await (await api("GET", "/api/sources")).json();
  const sel = $("source");
  sel.innerHTML = "";
  for (const s of info.sources) {
    const o = document.createElement("option");
    o.value = JSON.stringify(s.source === "demo" ? { source: "demo" } : { source: "path", path: s.path });
    o.textContent = s.name;
    sel.appendChild(o);
  }
  $("open-source").disabled = info.sources.length === 0;
  $("prompt-model").textContent = info.prompt_model;
  return info;
}

// The Video list shows the open video: its entry (the demo, a file under --root), or for an upload an
// entry of its own, named as uploaded.
function showSource(video) {
  const sel = $("source");
  for (const o of [...sel.options]) if (o.dataset.upload) o.remove();
  const want = video.key === "demo" ? { source: "demo" } : video.key.startsWith("path:") ? { source: "path", path: video.name } : null;
  const match = want && [...sel.options].find((o) => o.value === JSON.stringify(want));
  if (match) { sel.value = match.value; return; }
  const o = document.createElement("option");
  o.textContent = `${video.name} (uploaded)`;
  o.value = "";
  o.disabled = true;
  o.dataset.upload = "1";
  sel.appendChild(o);
  sel.value = "";
  o.selected = true;
}

async function openSource(payload) {
  message("Opening the video…");
  const info = await (await api("POST", "/api/sessions", payload)).json();
  await useSession(info, true);
}

// A session saved on the server (in memory or on disk: the server reopens it); `push`: a new history entry.
async function openSaved(id, push = false, note = "") {
  message("Reopening the session…");
  const info = await (await api("GET", `/api/sessions/${id}`)).json();
  await useSession(info, push, note);
}

async function uploadVideo(file) {
  const name = file.name.replace(/[^\w .()+,=@-]+/g, "_").replace(/\.\.+/g, ".").replace(/^[^\w]+/, "") || "video";
  message(`Uploading ${name} (${(file.size / 2 ** 20).toFixed(1)} MiB)…`);
  const info = await (await api("POST", `/api/sessions/upload?name=${encodeURIComponent(name)}`, file)).json();
  await useSession(info, true);
}

// Show session `info` in the page. The previous one stays on the server (Recent reopens it).
async function useSession(info, push = false, note = "") {
  playback.pause();
  const previous = S.sid && S.sid !== info.id && S.video ? S.video.name : null;
  if (previous) {  // saved on the server; its memory is freed (Recent and Back reopen it)
    await flushSaves();
    api("DELETE", sessionUrl()).catch(() => {});
  }
  if (S.events) { S.events.close(); S.events = null; }
  Object.assign(S, {
    sid: info.id, video: info.video, colors: info.colors, maxObjects: info.max_objects, cur: 0,
    images: new Map(), masks: new Map(), undo: new Map(), poly: [], stroke: null, job: null, proposal: null, drag: null,
    annotated: new Set(info.annotated), results: new Set(info.results),
  });
  S.objects = [...new Set([1, ...info.objects])].sort((a, b) => a - b);
  S.obj = S.objects[0];
  saved.remember(info.id, push);
  view.width = overlayCanvas.width = info.video.width;
  view.height = overlayCanvas.height = info.video.height;
  $("scrub").max = info.video.frames - 1;
  $("video-name").textContent = `${info.video.name} · ${info.video.frames} frames · ${info.video.width}×${info.video.height}`;
  showSource(info.video);
  showNotices(info.video.notices);
  fitCanvas();
  viewer.fit();  // a new video is shown whole
  renderObjects();
  setBusy(info.job && info.job.state === "running");
  if (info.job && info.job.state === "running") follow(info.job);
  await goto(0);
  document.body.dataset.state = "ready";
  const kept = previous ? ` The previous session (${previous}) is kept in Recent.` : "";
  if (info.notice) message(`${note}${info.notice[0].toUpperCase()}${info.notice.slice(1)}.${kept}`);
  else message(`${note}Ready: paint the objects on a frame, then propagate.${kept}`);
  saved.load();
}

// ---- frames and masks ------------------------------------------------------------------------------

function frameImage(k) {
  let img = S.images.get(k);
  if (!img) {
    img = new Image();
    img.src = sessionUrl(`/frames/${k}`);
    img.ready = img.decode().catch(() => {});
    S.images.set(k, img);
  }
  return img;
}

async function frameMask(k) {
  let entry = S.masks.get(k);
  if (!entry) {
    const r = await api("GET", sessionUrl(`/masks/${k}`));
    const bytes = new Uint8Array(await r.arrayBuffer());
    entry = { mask: bytes.length ? bytes : null, source: r.headers.get("X-Mask-Source") || "none" };
    if (!S.masks.has(k)) S.masks.set(k, entry);  // an edit made meanwhile wins
    entry = S.masks.get(k);
  }
  return entry;
}

async function goto(k) {
  if (!S.video) return;
  k = Math.max(0, Math.min(S.video.frames - 1, k));
  if (k !== S.cur) { S.poly = []; prompts.discard(true); }
  S.cur = k;
  $("scrub").value = k;
  $("frame-label").textContent = `/ ${S.video.frames - 1}`;
  frameNumber.show(k);
  const img = frameImage(k);
  for (const n of [k + 1, k + 2, k - 1]) if (n >= 0 && n < S.video.frames) frameImage(n);
  await Promise.all([img.ready, frameMask(k)]);
  if (S.cur === k) render();
}

function render() {
  const k = S.cur, img = S.images.get(k), entry = S.masks.get(k);
  if (!img || !img.complete) return;
  const { width: w, height: h } = view;
  ctx.drawImage(img, 0, 0, w, h);
  const mask = prompts.shownMask(entry ? entry.mask : null);  // with the Box / Click tools' proposal, if any
  if (mask && S.showOverlay) {
    const g = overlayCanvas.getContext("2d");
    const data = overlay(g.createImageData(w, h), mask, w, h, S.colors, (id) => !S.hidden.has(id), S.opacity);
    g.putImageData(data, 0, 0);
    ctx.drawImage(overlayCanvas, 0, 0);
  }
  const scale = 1 / viewer.scale();  // image px per screen px: outlines stay thin when zoomed
  ctx.lineWidth = 1.5 * scale;
  if (S.poly.length) {
    const c = S.colors[S.obj] || [255, 255, 255];
    ctx.strokeStyle = `rgb(${c})`;
    ctx.beginPath();
    S.poly.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    if (S.hover) ctx.lineTo(...S.hover);
    ctx.stroke();
    ctx.fillStyle = "#fff";
    for (const [x, y] of S.poly) ctx.fillRect(x - 2 * scale, y - 2 * scale, 4 * scale, 4 * scale);
  }
  if (S.hover && (S.tool === "brush" || S.tool === "eraser")) {
    ctx.strokeStyle = S.tool === "eraser" ? "#fff" : `rgb(${S.colors[S.obj]})`;
    ctx.beginPath();
    ctx.arc(S.hover[0], S.hover[1], S.size / 2, 0, 2 * Math.PI);
    ctx.stroke();
  }
  prompts.draw(ctx, scale);
  const proposing = prompts.current() !== null;
  $("prompt-accept").disabled = $("prompt-discard").disabled = !proposing;
  const where = entry ? entry.source : "none";
  $("frame-source").textContent = proposing ? "proposal, not kept yet (Enter keeps it, Esc discards it)"
    : { annotation: "painted", result: "propagated", none: "no mask" }[where];
  drawTimeline();
}

function drawTimeline() {
  const t = $("timeline"), n = S.video ? S.video.frames : 0;
  const w = (t.width = t.clientWidth || 600), h = t.height;
  const g = t.getContext("2d");
  g.fillStyle = "#111";
  g.fillRect(0, 0, w, h);
  for (let k = 0; k < n; k++) {
    const x0 = Math.floor((k * w) / n), x1 = Math.max(x0 + 1, Math.floor(((k + 1) * w) / n) - 1);
    g.fillStyle = S.annotated.has(k) ? "#f4f4f4" : S.results.has(k) ? "#4c8dff" : "#2a2d33";
    g.fillRect(x0, 2, x1 - x0, h - 4);
  }
  g.fillStyle = "#ff4d4d";
  g.fillRect(Math.floor(((S.cur + 0.5) * w) / n) - 1, 0, 3, h);
  drawMarks();
}

function fitCanvas() {  // the box sized to the window; the whole frame unless zoomed in (view.js)
  if (!S.video) return;
  viewer.layout(S.video.width, S.video.height);
  render();
}

// ---- objects and tools --------------------------------------------------------------------------------

function renderObjects() {
  const ul = $("objects");
  ul.innerHTML = "";
  for (const id of S.objects) {
    const li = document.createElement("li");
    li.id = `obj-${id}`;
    li.className = id === S.obj ? "selected" : "";
    li.title = `object ${id} (key ${id % 10})`;
    li.innerHTML = `<span class="swatch" style="background:rgb(${S.colors[id]})"></span><span class="name">Object ${id}</span>`;
    const vis = document.createElement("input");
    vis.type = "checkbox"; vis.id = `vis-${id}`; vis.checked = !S.hidden.has(id); vis.title = "show";
    vis.onclick = (e) => { e.stopPropagation(); vis.checked ? S.hidden.delete(id) : S.hidden.add(id); render(); };
    const del = document.createElement("button");
    del.type = "button"; del.textContent = "×"; del.title = "delete this object from every frame";
    del.onclick = guard(async (e) => {
      e.stopPropagation();
      if (!confirm(`Delete object ${id} from every frame?`)) return;
      await flushSaves();
      const info = await (await api("DELETE", sessionUrl(`/objects/${id}`))).json();
      S.objects = S.objects.filter((o) => o !== id);
      if (!S.objects.length) S.objects = [1];
      if (!S.objects.includes(S.obj)) S.obj = S.objects[0];
      S.masks.clear(); S.undo.clear();
      S.annotated = new Set(info.annotated); S.results = new Set(info.results);
      renderObjects();
      await goto(S.cur);
    });
    li.append(vis, del);
    li.onclick = () => selectObject(id);
    ul.appendChild(li);
  }
  $("add-object").disabled = S.objects.length >= S.maxObjects;
}

function selectObject(id) {
  if (!S.objects.includes(id)) return;
  if (id !== S.obj) prompts.discard(true);  // a proposal belongs to its object
  S.obj = id;
  renderObjects();
  render();
}

function addObject() {
  const id = [...Array(S.maxObjects).keys()].map((i) => i + 1).find((i) => !S.objects.includes(i));
  if (id === undefined) { message(`at most ${S.maxObjects} objects`, "error"); return; }
  S.objects = [...S.objects, id].sort((a, b) => a - b);
  selectObject(id);
}

function setTool(tool) {
  if (S.tool === "polygon" && tool !== "polygon") S.poly = [];
  // a proposal is kept by Enter / Accept only; a painting tool drops it (Box and Click refine it)
  if (tool !== "box" && tool !== "click" && prompts.discard(true)) message("The proposal was not kept (Enter or Accept keeps one).");
  S.tool = tool;
  document.body.dataset.tool = tool;
  for (const b of document.querySelectorAll("[data-tool]")) b.classList.toggle("active", b.dataset.tool === tool);
  render();
}

function setSize(size) {
  S.size = Math.max(1, Math.min(80, size));
  $("brush-size").value = S.size;
  $("brush-size-label").textContent = S.size;
  render();
}

async function importPng(file) {
  const k = S.cur;
  await flushSaves();
  const entry = await frameMask(k);
  const info = await (await api("POST", sessionUrl(`/masks/${k}/png`), file)).json();
  const stack = S.undo.get(k) || [];  // undo brings back the mask as it was before the import
  stack.push(entry.mask ? entry.mask.slice() : new Uint8Array(S.video.width * S.video.height));
  S.undo.set(k, stack);
  S.masks.delete(k);
  S.annotated.add(k);
  S.objects = [...new Set([...S.objects, ...info.objects])].sort((a, b) => a - b);
  renderObjects();
  await goto(k);
  message(`Imported ${file.name} as the mask of frame ${k}.`);
}

// ---- propagation ------------------------------------------------------------------------------------------

function setBusy(busy) {
  for (const id of ["propagate-forward", "propagate-backward", "propagate-both", "export-masks", "export-objects", "export-overlay"]) {
    $(id).disabled = busy;
  }
  $("cancel").disabled = !busy;
}

async function propagate(direction) {
  await flushSaves();
  const job = await (await api("POST", sessionUrl("/propagate"), { frame: S.cur, direction })).json();
  follow(job);
}

function follow(job) {
  S.job = job;
  document.body.dataset.job = "running";
  document.body.dataset.jobId = String(job.id);
  setBusy(true);
  $("progress").max = job.total;
  $("progress").value = job.done;
  $("progress-text").textContent = `0 / ${job.total} frames`;
  message(`Propagating ${job.direction} from frame ${job.start}…`);
  const es = (S.events = new EventSource(sessionUrl(`/events?job=${job.id}`)));
  es.onmessage = (ev) => {
    const e = JSON.parse(ev.data);
    if (e.type === "progress") {
      for (const k of e.frames) {
        S.results.add(k);
        if (!S.annotated.has(k)) S.masks.delete(k);
        if (k === S.cur) goto(k);
      }
      $("progress").value = e.done;
      $("progress-text").textContent = `${e.done} / ${e.total} frames`;
      drawTimeline();
    } else if (e.type === "end") {
      es.close();
      S.events = null;
      setBusy(false);
      $("progress").value = e.state === "finished" ? e.total : e.done;
      $("progress-text").textContent = `${e.done} / ${e.total} frames, ${e.state}`;
      if (e.state === "failed") message(`propagation failed: ${e.message}`, "error");
      else message((e.state === "finished" ? `Propagated ${e.done} frames.` : `Cancelled after ${e.done} frames.`) +
                   (e.message ? ` ${e.message}` : ""));
      document.body.dataset.job = e.state;
      goto(S.cur);
    }
  };
  es.onerror = () => {
    if (es.readyState === EventSource.CLOSED) { setBusy(false); message("lost the progress stream", "error"); }
  };
}

async function cancel() {
  await api("POST", sessionUrl("/cancel"));
}

async function exportKind(kind) {
  await flushSaves();
  $("export-status").textContent = `exporting ${kind}…`;
  document.body.dataset.exported = "";
  const r = await (await api("POST", sessionUrl("/export"), { kind })).json();
  const a = document.createElement("a");
  a.href = r.url;
  a.download = r.name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  $("export-status").textContent = r.saved ? `saved ${r.saved}` : `downloaded ${r.name}`;
  document.body.dataset.exported = r.name;
}

// ---- wiring -----------------------------------------------------------------------------------------------

function onKey(ev) {
  if (!S.video) return;
  const t = ev.target;
  if (t instanceof HTMLInputElement && t.type === "range" && ev.key.startsWith("Arrow")) return;  // the slider's own keys
  if (t instanceof HTMLSelectElement) return;
  if (t instanceof HTMLTextAreaElement || t.isContentEditable) return;  // typing: its keys are text
  if (t instanceof HTMLInputElement && !["range", "checkbox", "radio", "file", "button"].includes(t.type)) return;
  const step = ev.shiftKey ? 10 : 1;
  if ((ev.ctrlKey || ev.metaKey) && ev.key.toLowerCase() === "z") { undo(); ev.preventDefault(); return; }
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const keys = {
    ArrowLeft: () => goto(S.cur - step), ArrowRight: () => goto(S.cur + step),
    Home: () => goto(0), End: () => goto(S.video.frames - 1),
    b: () => setTool("brush"), e: () => setTool("eraser"), p: () => setTool("polygon"), f: () => setTool("fill"),
    h: () => setTool("pan"), r: () => setTool("box"), c: () => setTool("click"), " ": () => playback.toggle(),
    F: () => viewer.fit(), "+": () => viewer.zoomBy(2), "=": () => viewer.zoomBy(2), "-": () => viewer.zoomBy(0.5),
    "[": () => setSize(S.size - 2), "]": () => setSize(S.size + 2),
    Enter: () => (prompts.current() ? prompts.accept() : S.tool === "polygon" && closePolygon()),
    Escape: () => { if (!prompts.discard()) { S.poly = []; render(); } },
    Backspace: () => { S.poly.pop(); render(); },
  };
  const action = keys[ev.key] || (/^[0-9]$/.test(ev.key) ? () => selectObject(Number(ev.key) || 10) : null);
  if (action) { ev.preventDefault(); guard(action)(); }
}

function init() {
  view.addEventListener("pointerdown", (ev) => { if (ev.button === 0 && S.tool !== "pan") playback.pause(); });
  view.addEventListener("pointerdown", guard(onPointerDown));
  view.addEventListener("pointerdown", prompts.onPointerDown);
  view.addEventListener("pointermove", (ev) => { if (!prompts.onPointerMove(ev)) onPointerMove(ev); });
  view.addEventListener("pointerup", () => { prompts.onPointerUp(); onPointerUp(); });
  view.addEventListener("pointercancel", () => { S.drag = null; onPointerUp(); });
  view.addEventListener("contextmenu", (ev) => { if (S.tool === "click" || S.tool === "box") ev.preventDefault(); });
  view.addEventListener("pointerleave", () => { S.hover = null; render(); });
  view.addEventListener("dblclick", onDoubleClick);
  document.addEventListener("keydown", onKey);
  window.addEventListener("resize", fitCanvas);
  $("scrub").addEventListener("input", guard(() => goto(Number($("scrub").value))));
  $("timeline").addEventListener("click", guard((ev) => {
    const r = $("timeline").getBoundingClientRect();
    return goto(Math.floor(((ev.clientX - r.left) / r.width) * S.video.frames));
  }));
  $("prev").onclick = guard(() => goto(S.cur - 1));
  $("next").onclick = guard(() => goto(S.cur + 1));
  $("play").onclick = guard(() => playback.toggle());
  $("fit").onclick = () => viewer.fit();
  $("zoom-1").onclick = () => viewer.actual();
  for (const b of document.querySelectorAll("[data-tool]")) b.onclick = () => setTool(b.dataset.tool);
  $("brush-size").oninput = () => setSize(Number($("brush-size").value));
  $("fill-tolerance").oninput = () => {
    S.fillTolerance = Number($("fill-tolerance").value);
    $("fill-tolerance-label").textContent = S.fillTolerance;
  };
  $("undo").onclick = undo;
  $("prompt-accept").onclick = () => prompts.accept();
  $("prompt-discard").onclick = () => prompts.discard();
  $("remove-annotation").onclick = guard(() => removeAnnotation(S.cur));
  $("add-object").onclick = addObject;
  $("opacity").oninput = () => { S.opacity = Number($("opacity").value) / 100; render(); };
  $("show-overlay").onchange = () => { S.showOverlay = $("show-overlay").checked; render(); };
  $("propagate-forward").onclick = guard(() => propagate("forward"));
  $("propagate-backward").onclick = guard(() => propagate("backward"));
  $("propagate-both").onclick = guard(() => propagate("both"));
  $("cancel").onclick = guard(cancel);
  $("export-masks").onclick = guard(() => exportKind("masks"));
  $("export-objects").onclick = guard(() => exportKind("objects"));
  $("export-overlay").onclick = guard(() => exportKind("overlay"));
  $("open-source").onclick = guard(() => openSource(JSON.parse($("source").value)));
  $("upload").onchange = guard(async () => { const f = $("upload").files[0]; $("upload").value = ""; if (f) await uploadVideo(f); });
  $("import-png").onchange = guard(async () => { const f = $("import-png").files[0]; $("import-png").value = ""; if (f) await importPng(f); });
  setTool("brush");
  setSize(10);
  start().catch((err) => { document.body.dataset.state = "error"; message(err.message, "error"); });
}

// The page opens the session its URL names; else the one changed last (as an editor reopens the last
// document: a visit creates no session); on a server with none yet, the demo video when it is on.
async function start() {
  const info = await loadSources();
  const list = await saved.load();
  const id = sidFromUrl();
  let note = "";
  if (id) {
    try {
      return await openSaved(id);
    } catch (err) {
      note = `${err.message}. `;
    }
  }
  if (list.length) return openSaved(list[0].id, false, `${note}Reopened the latest session (Recent lists the others). `);
  if (info.demo && !note) return openSource({ source: "demo" });
  document.body.dataset.state = "empty";
  message(note + (info.root ? "Open a video from the list or upload one." : "Upload a video to start."), note ? "error" : "info");
}

init();
