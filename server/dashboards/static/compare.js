// The compare page's promote form: a POST to the REST API with the session cookie and the CSRF token.
// When the gate refuses (409), its message and figures are shown on the page, with a way to force it.
import { cfg, el, describe } from "../labeling/page.js";

const form = document.getElementById("promote-form");
const out = document.getElementById("promote-result");
let csrf = document.querySelector('meta[name="csrf-token"]').content;

async function post(path, body) {
  const send = () => fetch(`/api/v1${path}`, {
    method: "POST",
    credentials: "same-origin",
    headers: { Accept: "application/json", "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify(body),
  });
  let res = await send();
  if (res.status === 403) {  // the session may have been renewed in another tab: with its new token, try once more
    const s = await fetch("/session", { credentials: "same-origin", headers: { Accept: "application/json" } });
    const fresh = s.ok ? (await s.json()).csrf : csrf;
    if (fresh !== csrf) { csrf = fresh; res = await send(); }
  }
  let data = null;
  try { data = await res.json(); } catch { data = null; }
  return { status: res.status, data };
}

function fmt(x) { return x === null || x === undefined ? "—" : Number(x).toFixed(4); }

function figures(checked) {
  if (!checked || !checked.length) return null;
  const rows = checked.map((c) => el("tr", {},
    el("th", { scope: "row", text: c.eval_set }),
    el("td", { text: fmt(c.production) }),
    el("td", { text: fmt(c.candidate) }),
    el("td", { text: c.production === null || c.candidate === null ? "—" : (c.candidate - c.production >= 0 ? "+" : "") + (c.candidate - c.production).toFixed(4) }),
  ));
  return el("table", { class: "gate-figures" },
    el("caption", { class: "sr-only", text: "Accuracy the gate compared" }),
    el("thead", {}, el("tr", {},
      el("th", { scope: "col", text: "Eval set" }), el("th", { scope: "col", text: "Production" }),
      el("th", { scope: "col", text: "Candidate" }), el("th", { scope: "col", text: "Change" }))),
    el("tbody", {}, ...rows));
}

function showStage(ref, stage) {
  for (const slot of document.querySelectorAll("[data-stage-for]")) {
    if (slot.dataset.stageFor !== ref) continue;
    slot.replaceChildren(el("span", { class: `pill stage-${stage}${stage === "production" ? " prod" : ""}`, text: stage }));
  }
}

async function promote(ref, stage, force) {
  out.replaceChildren(el("p", { class: "muted", text: `Promoting ${ref} to ${stage}…` }));
  const { status, data } = await post(`/models/${encodeURIComponent(ref)}/promote`, { stage, force });
  if (status === 200) {
    showStage(data.model, data.stage);
    if (data.replaced) showStage(data.replaced, "archived");
    const said = `${data.model} is now in ${data.stage}` + (data.replaced ? `; ${data.replaced} is archived.` : ".");
    out.replaceChildren(el("p", { class: "notice promoted", text: said }), figures(data.checked));
    return;
  }
  if (status === 409 && data && data.checked) {
    const limit = data.max_regression !== undefined ? ` (allowed loss: ${fmt(data.max_regression)})` : "";
    const again = el("button", { type: "button", class: "force", text: `Promote ${ref} anyway` });
    again.addEventListener("click", () => promote(ref, stage, true));
    out.replaceChildren(
      el("p", { class: "error gate", role: "alert", text: `The gate refused: ${describe(data, "a regression")}` }),
      el("p", { class: "hint", text: `Accuracy of production ${data.production} and of ${data.candidate}${limit}:` }),
      figures(data.checked),
      again,
    );
    return;
  }
  out.replaceChildren(el("p", { class: "error", role: "alert", text: describe(data, `promotion failed (HTTP ${status})`) }));
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  promote(form.elements.model.value, form.elements.stage.value, false);
});
document.body.dataset.ready = cfg.dataset ? "1" : "0";
