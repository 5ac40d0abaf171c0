// Sessions kept by the server: the Recent list (every session saved on this server, reopened with one click),
// the keep-alive of the open session (a page left open keeps its session), and the Back button (one
// history entry per opened session, `?s=<id>` in the URL; Back reopens the previous one).
const $ = (id) => document.getElementById(id);
const ALIVE_MS = 60_000;  // the server counts a page as open for 3 minutes after its last keep-alive

export function ago(seconds) {
  const s = Math.max(0, Date.now() / 1000 - seconds);
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}

// The session id in the page's URL (`?s=<id>`; `#s=<id>` from earlier versions), or null.
export function sidFromUrl() {
  const m = /[?&#]s=([0-9a-f]{16})/.exec(location.search + location.hash);
  return m ? m[1] : null;
}

// `reopen(id)` opens a saved session in the page (app.js's openSaved, without a new history entry).
export function recent({ S, api, message, guard, reopen }) {
  async function load() {
    let list = [];
    try {
      list = (await (await api("GET", "/api/recent")).json()).sessions;
    } catch (_) { return list; }  // the list is a convenience: the page works without it
    const sel = $("recent"), kept = sel.value;
    sel.innerHTML = "";
    for (const r of list) {
      const o = document.createElement("option");
      o.value = r.id;
      o.textContent = `${r.name} · ${r.frames} frames · ${r.objects} object${r.objects === 1 ? "" : "s"} · ${ago(r.changed)}` +
        (r.id === S.sid ? " (this one)" : "");
      sel.appendChild(o);
    }
    if (list.some((r) => r.id === kept)) sel.value = kept;
    $("open-recent").disabled = list.length === 0;
    return list;
  }

  // The URL names the open session: a new history entry when another one is opened (so Back returns to it).
  function remember(id, push) {
    const url = new URL(location.href);
    url.searchParams.set("s", id);
    url.hash = "";
    const current = sidFromUrl();
    if (push && current && current !== id) history.pushState({ sid: id }, "", url);
    else history.replaceState({ sid: id }, "", url);
  }

  async function alive() {
    if (!S.sid) return;
    try {
      const r = await (await api("POST", `/api/sessions/${S.sid}/alive`)).json();
      if (r.notice) message(r.notice);
    } catch (err) {
      if (err.status === 404) message(err.message, "error");
    }
    load();
  }

  setInterval(alive, ALIVE_MS);
  window.addEventListener("popstate", guard(async () => {
    const id = sidFromUrl();
    if (id && id !== S.sid) await reopen(id);
  }));
  $("open-recent").onclick = guard(async () => {
    const id = $("recent").value;
    if (id && id !== S.sid) await reopen(id, true);
  });
  return { load, remember };
}
