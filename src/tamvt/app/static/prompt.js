// The Box and Click tools: a proposed mask for the selected object on the current frame, from the server's
// prompt model (`tamvt app --prompt-model`). Drag a box, or click: left = object, right or Shift+left =
// background; each click refines the proposal (the server gets every click made on it so far). A proposal is
// only shown: Enter or Accept makes it the object's part of the frame's painted mask through the editor's
// own edit (`commit`, edit.js: undo, save, propagation as for the brush); Esc discards it. Leaving the frame,
// picking another object or a painting tool drops it. The pure functions are tested under node
// (tests/test_app_prompt_js.py).

// `mask` (W*H ids, or null: none yet) with object `obj`'s pixels replaced by the proposal (`proposal`, W*H
// 0 / 1): a new array. Other objects keep their pixels (brush over them to take them).
export function applyProposal(mask, proposal, obj) {
  const out = mask ? mask.slice() : new Uint8Array(proposal.length);
  for (let i = 0; i < out.length; i++) {
    if (out[i] === obj) out[i] = 0;
    if (proposal[i] && out[i] === 0) out[i] = obj;
  }
  return out;
}

// The box dragged from image point `a` to `b` ([x, y], continuous pixels) as whole pixels [x0, y0, x1, y1]
// (x1, y1 exclusive) within a w x h frame; null when it is under `min` pixels wide or high (a click, not a drag).
export function dragBox(a, b, w, h, min = 3) {
  const x0 = Math.max(0, Math.floor(Math.min(a[0], b[0]))), x1 = Math.min(w, Math.ceil(Math.max(a[0], b[0])));
  const y0 = Math.max(0, Math.floor(Math.min(a[1], b[1]))), y1 = Math.min(h, Math.ceil(Math.max(a[1], b[1])));
  return x1 - x0 < min || y1 - y0 < min ? null : [x0, y0, x1, y1];
}

// A pointer press of the Click tool: "positive" (the object: left button), "negative" (the background: right
// button, or Shift with the left one), or null (another button).
export function clickKind(ev) {
  if (ev.button === 2 || (ev.button === 0 && ev.shiftKey)) return "negative";
  return ev.button === 0 ? "positive" : null;
}

export function prompter({ S, view, viewer, api, message, sessionUrl, render, flushSaves, commit }) {
  let queue = Promise.resolve();  // one request at a time: each click refines the previous one's answer
  let shown = null;               // {proposal, base, mask}: the frame's mask with the proposal in it
  let generation = 0;             // bumped by discard: an answer to an earlier request is then dropped

  const current = () => {  // the proposal of the current frame and object, if any
    const p = S.proposal;
    return p && p.frame === S.cur && p.obj === S.obj ? p : null;
  };

  let pending = 0;                // requests queued or running (body's data-prompting, for the tests)
  function enqueue(task) {
    document.body.dataset.prompting = String(++pending);
    queue = queue.then(task).catch((err) => message(err.message, "error"))
      .finally(() => { document.body.dataset.prompting = String(--pending); });
    return queue;
  }

  async function request(body, clicks) {
    const [asked, sid] = [generation, S.sid];
    await flushSaves();  // the server refines the frame's saved mask when there is no proposal yet
    const t0 = performance.now();
    const r = await api("POST", sessionUrl("/prompt"), body);
    const mask = new Uint8Array(await r.arrayBuffer());
    // the page moved on meanwhile (another frame, object or video; Esc)
    const moved = asked !== generation || sid !== S.sid || S.cur !== body.frame || S.obj !== body.object;
    if (moved || !S.video) return;
    const seconds = (performance.now() - t0) / 1000;
    S.proposal = { frame: body.frame, obj: body.object, mask, box: body.box || null, ...clicks };
    const n = mask.reduce((a, v) => a + v, 0);
    message(n ? `Proposal for object ${body.object} (${r.headers.get("X-Prompt-Model")}, ${seconds.toFixed(1)} s): ` +
                "Enter or Accept keeps it, Esc discards it; click to refine (right or Shift+click: background)."
              : "The model found nothing there: drag a larger box, or click the object.", n ? "info" : "error");
    render();
  }

  function onPointerDown(ev) {
    if (!S.video || (S.tool !== "box" && S.tool !== "click")) return;
    view.focus();
    const p = viewer.toImage(ev);
    if (S.tool === "box") {
      if (ev.button !== 0) return;
      view.setPointerCapture(ev.pointerId);
      S.drag = { from: p, to: p };
      render();
      return;
    }
    const kind = clickKind(ev);
    if (!kind) return;
    const [x, y] = [Math.floor(p[0]), Math.floor(p[1])];
    const [frame, object] = [S.cur, S.obj];
    enqueue(() => {
      if (S.cur !== frame || S.obj !== object) return;
      const last = current();
      const clicks = { positive: last ? [...last.positive] : [], negative: last ? [...last.negative] : [] };
      clicks[kind].push([x, y]);
      return request({ frame, object, ...clicks, new: !last }, clicks);
    });
  }

  function onPointerMove(ev) {
    if (!S.drag) return false;
    S.drag.to = viewer.toImage(ev);
    render();
    return true;
  }

  function onPointerUp() {
    const drag = S.drag;
    if (!drag) return;
    S.drag = null;
    const box = dragBox(drag.from, drag.to, S.video.width, S.video.height);
    render();
    if (!box) { message("drag a box around the object (press, move, release)", "error"); return; }
    const [frame, object] = [S.cur, S.obj];
    enqueue(() => request({ frame, object, box }, { positive: [], negative: [] }));
  }

  // Keep the current proposal as the object's mask on its frame: the editor's edit, as a brush stroke.
  function accept() {
    return enqueue(() => {
      const p = current();
      if (!p) { message("no proposal to keep: drag a box (R) or click the object (C) first", "error"); return; }
      commit((mask) => mask.set(applyProposal(mask, p.mask, p.obj)));
      S.proposal = null;
      message(`Kept the proposal as object ${p.obj} on frame ${p.frame} (Ctrl+Z undoes it; the brush and eraser refine it).`);
      render();
    });
  }

  function discard(quiet = false) {
    const had = S.proposal !== null || S.drag !== null;
    generation++;
    S.proposal = null;
    S.drag = null;
    if (had && !quiet) message("Proposal discarded: the frame's mask is as it was.");
    render();
    return had;
  }

  // The mask to show for the current frame: its own, or with the proposal in it.
  function shownMask(mask) {
    const p = current();
    if (!p) return mask;
    if (!shown || shown.proposal !== p || shown.base !== mask) shown = { proposal: p, base: mask, mask: applyProposal(mask, p.mask, p.obj) };
    return shown.mask;
  }

  // The dragged box, the proposal's box and clicks, over the frame (`scale`: image px per screen px).
  function draw(ctx, scale) {
    const p = current();
    document.body.dataset.proposal = p ? "1" : "0";
    const c = `rgb(${S.colors[S.obj] || [255, 255, 255]})`;
    ctx.save();
    ctx.setLineDash([6 * scale, 4 * scale]);
    if (p && p.box) {
      ctx.strokeStyle = c;
      ctx.strokeRect(p.box[0], p.box[1], p.box[2] - p.box[0], p.box[3] - p.box[1]);
    }
    if (S.drag) {
      const [a, b] = [S.drag.from, S.drag.to];
      ctx.strokeStyle = "#fff";
      ctx.strokeRect(Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.abs(b[0] - a[0]), Math.abs(b[1] - a[1]));
    }
    ctx.setLineDash([]);
    for (const [kind, fill] of [["positive", "#3ddc6a"], ["negative", "#ff4d4d"]]) {
      for (const [x, y] of (p && p[kind]) || []) {
        ctx.beginPath();
        ctx.arc(x + 0.5, y + 0.5, 5 * scale, 0, 2 * Math.PI);
        ctx.fillStyle = fill;
        ctx.fill();
        ctx.strokeStyle = "#fff";
        ctx.stroke();
      }
    }
    ctx.restore();
  }

  return { onPointerDown, onPointerMove, onPointerUp, accept, discard, shownMask, draw, current };
}
