// The compare page's promote form: a POST to the REST API with the session cookie and the CSRF token.
// When the gate refuses (409), its message and figures are shown on the page, with a way to force it.
import { call, cfg, el, describe } from "../labeling/page.js";

const form = document.getElementById("promote-form");
const out = document.getElementById("promote-result");
const post = (path, body) => call("POST", path, body);

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
