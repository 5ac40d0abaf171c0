// The painted frames on the timeline: a mark per painted frame (a click goes there; its × removes that
// frame's painting, on the server too, where the frame also leaves the objects' memories) and the
// "Remove this frame's painting" button. Wired by app.js, which calls drawMarks() whenever it redraws
// the timeline.

export function timeline({ S, api, sessionUrl, goto, message, flushSaves }) {
  const $ = (id) => document.getElementById(id);
  let shown = "";  // the marks on the page, as a key: rebuilt only when the painted frames change

  function drawMarks() {
    const box = $("marks"), n = S.video ? S.video.frames : 0;
    const frames = [...S.annotated].sort((a, b) => a - b);
    $("remove-annotation").disabled = !S.annotated.has(S.cur);
    const key = `${S.sid}:${n}:${frames.join(",")}`;
    if (key === shown) return;
    shown = key;
    box.innerHTML = "";
    box.dataset.frames = frames.join(",");
    for (const k of frames) {
      const mark = document.createElement("span");
      mark.className = "mark";
      mark.id = `mark-${k}`;
      mark.style.left = `${((k + 0.5) * 100) / n}%`;
      const go = document.createElement("button");
      go.type = "button"; go.className = "mark-go"; go.textContent = String(k);
      go.title = `frame ${k} is painted: go there`;
      go.onclick = () => goto(k).catch((err) => message(err.message, "error"));
      const del = document.createElement("button");
      del.type = "button"; del.className = "mark-del"; del.id = `unmark-${k}`; del.textContent = "×";
      del.title = `remove the painting of frame ${k} (the objects' memories forget it)`;
      del.onclick = () => removeAnnotation(k).catch((err) => message(err.message, "error"));
      mark.append(go, del);
      box.appendChild(mark);
    }
  }

  async function removeAnnotation(k) {
    await flushSaves();
    const info = await (await api("DELETE", sessionUrl(`/masks/${k}`))).json();
    S.annotated = new Set(info.annotated);
    S.results = new Set(info.results);
    S.masks.delete(k);
    S.undo.delete(k);
    await goto(S.cur);
    drawMarks();
    message(`Removed the painting of frame ${k}: propagate again to recompute the frames it changed.`);
  }

  return { drawMarks, removeAnnotation };
}
