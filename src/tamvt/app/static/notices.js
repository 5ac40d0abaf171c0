// Notices about the open video (a cut-off file, a variable frame rate): one line each under the header,
// shown until dismissed (×). The server sends them with the session's video info (`video.notices`).
const box = () => {
  let el = document.getElementById("notices");
  if (!el) {
    el = document.createElement("div");
    el.id = "notices";
    el.setAttribute("role", "status");
    document.querySelector("header").after(el);
  }
  return el;
};

// Show `notices` ([{kind, text}, ...]) in place of the previous video's.
export function showNotices(notices) {
  const el = box();
  el.innerHTML = "";
  for (const n of notices || []) {
    const p = document.createElement("p");
    p.className = `notice ${n.kind}`;
    p.dataset.kind = n.kind;
    const text = document.createElement("span");
    text.textContent = n.text;
    const close = document.createElement("button");
    close.type = "button";
    close.textContent = "×";
    close.title = "dismiss";
    close.onclick = () => p.remove();
    p.append(text, close);
    el.appendChild(p);
  }
}
