// The labeling workbench: one example at a time, large; a key per label; the next example already here.
//
// State lives in this module: the loaded part of the queue (fetched ahead), the position, the undo
// stack, and the outbox of edits not yet on the server (sync.js). Everything from the dataset is
// put on the page as text (textContent), never as markup.

import { Outbox } from "./sync.js";
import { $, api, cfg, describe, el, enc, mediaUrl, refreshCsrf, sleep } from "./page.js";
import { commitDialog } from "./commit.js";
import { gridMode } from "./grid.js";
import { decisions } from "./suggest.js";

const AHEAD = 10; // fetch the next page when fewer than this many examples are left
const PRELOAD = 6; // media of the next examples fetched before they are shown
const PAGE = 50;
const RESERVED = new Set(["u", "g", "?"]);
const KEYS = "1234567890abcdefghijklmnopqrstvwxyz".split("").filter((k) => !RESERVED.has(k));

const state = {
  items: [],
  pos: 0,
  cursor: "",
  end: false,
  loading: null,
  undo: [],
  staged: Number($("staged-count").textContent) || 0,
  zoom: 1,
  conflicts: new Map(),
  signedOut: false,
  grid: false,
  selected: new Set(),
  anchor: 0,
};

// ---- keys: a label named by one digit or letter gets that key; the others the free ones -----------

const keyOf = new Map();
const labelOf = new Map();
for (const label of cfg.labels) {
  const k = label.toLowerCase();
  if (label.length === 1 && KEYS.includes(k) && !labelOf.has(k)) { keyOf.set(label, k); labelOf.set(k, label); }
}
for (const label of cfg.labels) {
  if (keyOf.has(label)) continue;
  const free = KEYS.find((k) => !labelOf.has(k));
  if (!free) break; // more labels than keys: the rest are buttons only
  keyOf.set(label, free); labelOf.set(free, label);
}

// ---- the outbox: staged edits as PUT (or DELETE, for an undo) through the API ---------------------

async function sendEdit(edit) {
  let res;
  try {
    res = edit.drop
      ? await api("DELETE", `/edits/${enc(edit.key)}?branch=${enc(cfg.branch)}`)
      : await api("PUT", `/edits/${enc(edit.key)}?branch=${enc(cfg.branch)}`, { label: edit.label, version: edit.version });
  } catch {
    return { outcome: "offline" };
  }
  if (res.status === 401) return { outcome: "signed-out", data: res.data };
  if (res.status === 403 && String(describe(res.data, "")).includes("X-CSRF-Token")) {
    await refreshCsrf();
    return { outcome: "signed-out", data: res.data };
  }
  if (res.status >= 500 || res.status === 0) return { outcome: "offline", data: res.data };
  if (res.status === 409) return { outcome: "conflict", data: res.data };
  if (res.status >= 400) return { outcome: "refused", data: res.data };
  if (edit.drop) {
    // Dropping an edit answers counts only: read the example's version for the next edit of it.
    const now = await api("GET", `/examples/${enc(edit.key)}?rev=${enc(cfg.branch)}`).catch(() => null);
    return { outcome: "saved", data: { example_version: now && now.status === 200 ? now.data.version : null } };
  }
  return { outcome: "saved", data: res.data };
}

const outbox = new Outbox(`s2.outbox.${cfg.user}.${cfg.dataset}.${cfg.branch}`, sendEdit, onSync);

function onSync(event, edit, data) {
  const item = edit && state.items.find((i) => i.example.key === edit.key);
  if (event === "saved" && item && data) {
    if (edit.drop) {
      item.example.staged_label = null; item.example.staged_by = null;
      item.example.version = data.example_version || item.example.version;
    } else {
      item.example.version = data.example_version || item.example.version;
    }
    if (edit.drop) refreshItem(item);
    markRecent(edit.key, "saved");
  } else if (event === "signed-out") {
    state.signedOut = true;
    refreshCsrf().then((ok) => { if (ok) state.signedOut = false; });
  } else if (event === "online" || (event === "saved" && state.signedOut)) {
    state.signedOut = false;
  } else if (event === "conflict" && edit) {
    state.conflicts.set(edit.key, { mine: edit.label, drop: !!edit.drop, ...data });
    if (item && data) { item.example.version = data.version; item.example.staged_label = data.removed ? null : data.label; item.example.staged_by = data.by; }
    markRecent(edit.key, "conflict");
    renderConflicts();
  } else if (event === "refused" && edit) {
    showSync(`Not saved: ${describe(data, "the server refused the edit")}`, "offline");
    markRecent(edit.key, "refused");
    if (item) { item.example.staged_label = null; item.example.staged_by = null; }
  }
  renderStatus();
  if (item && item === current()) renderDetails();
}

// ---- the queue, fetched a page ahead -----------------------------------------------------------------

function current() { return state.items[state.pos]; }

async function loadMore() {
  if (state.loading || state.end) return state.loading;
  state.loading = (async () => {
    let found = 0;
    while (!state.end && found === 0) {
      const filters = Object.entries(cfg.filters || {}).map(([k, v]) => `&${k}=${enc(v)}`).join("");
      const q = `?branch=${enc(cfg.branch)}&queue=${enc(cfg.queue)}&limit=${PAGE}${filters}` + (state.cursor ? `&cursor=${enc(state.cursor)}` : "");
      let res;
      try { res = await api("GET", `/queue${q}`); } catch { showSync("The server cannot be reached: retrying…", "offline"); await sleep(2000); continue; }
      if (res.status !== 200) { showViewerMessage(describe(res.data, `the queue could not be read (${res.status})`)); state.end = true; break; }
      for (const item of res.data.items) {
        if (!state.items.some((i) => i.example.key === item.example.key)) { state.items.push(item); found += 1; }
      }
      state.cursor = res.data.next_cursor;
      state.end = !state.cursor;
    }
  })().finally(() => { state.loading = null; });
  return state.loading;
}

const cache = new Map(); // input id -> decoded image or text, for the examples ahead
function preload(item) {
  const ex = item.example;
  if (cache.has(ex.input)) return cache.get(ex.input);
  let ready;
  if (cfg.modality === "image") {
    const img = new Image();
    img.src = mediaUrl(ex);
    img.alt = "";
    ready = img.decode().then(() => img, () => img);
  } else if (ex.inline !== null && ex.inline !== undefined) {
    ready = Promise.resolve(ex.inline);
  } else {
    ready = fetch(mediaUrl(ex), { credentials: "same-origin" }).then((r) => r.text());
  }
  const entry = { ready, value: null };
  ready.then((v) => { entry.value = v; }, () => {});
  cache.set(ex.input, entry);
  if (cache.size > 400) cache.delete(cache.keys().next().value);
  return entry;
}

function ahead() {
  for (let i = state.pos; i < Math.min(state.items.length, state.pos + PRELOAD); i++) preload(state.items[i]);
  if (state.items.length - state.pos < AHEAD) loadMore().then(() => { for (let i = state.pos; i < Math.min(state.items.length, state.pos + PRELOAD); i++) preload(state.items[i]); });
}

// ---- drawing ------------------------------------------------------------------------------------------

function showViewerMessage(text) {
  $("viewer").replaceChildren(el("p", { class: "empty", text }));
}

function effectiveLabel(ex) { return ex.staged_by ? (ex.staged_remove ? null : ex.staged_label) : ex.label; }

function preselected(item) {
  if (!item || cfg.votes) return null; // a consensus queue asks for each labeler's own judgement: nothing pre-selected
  if (item.suggestion) return item.suggestion.label;
  return item.guess ? item.guess.label : effectiveLabel(item.example);
}

// ---- suggestions and votes (suggest.js): the data engine's queues and consensus queues ----------------

const { similarTo, decideSuggestion, castVote, castVotes, voteRows } = decisions({ state, current, flash, move, addRecent, effectiveLabel, renderDetails });

function fitImage(img) {
  const viewer = $("viewer");
  const w = img.naturalWidth || 1, h = img.naturalHeight || 1;
  const room = Math.min((viewer.clientWidth - 32) / w, (viewer.clientHeight - 32) / h);
  // Small images grow by whole pixels (pixel-exact); large ones shrink to fit.
  const base = room >= 1 ? Math.max(1, Math.floor(room)) : room;
  img.style.width = `${Math.round(w * base * state.zoom)}px`;
  img.style.height = `${Math.round(h * base * state.zoom)}px`;
  viewer.style.overflow = state.zoom > 1 ? "auto" : "hidden";
}

function renderExample() {
  const item = current();
  if (!item) {
    if (state.loading) { showViewerMessage("Loading…"); state.loading.then(render); return; }
    showViewerMessage(state.items.length ? `The end of the ${cfg.queue} queue: ${state.items.length} example(s). Commit your edits when you are done (Shift+C).` : `Nothing in the ${cfg.queue} queue on ${cfg.branch}${Object.keys(cfg.filters || {}).length ? " with these filters" : ""}.`);
    return;
  }
  const entry = preload(item);
  const viewer = $("viewer");
  const draw = (value) => {
    if (current() !== item || state.grid) return; // moved on (or to the grid) while it loaded
    if (cfg.modality === "image") {
      const img = value instanceof HTMLImageElement ? value : el("img", { src: mediaUrl(item.example) });
      img.alt = `example ${item.example.key}`;
      img.draggable = false;
      viewer.replaceChildren(img);
      if (img.complete) fitImage(img); else img.onload = () => fitImage(img);
    } else if (cfg.modality === "tabular") {
      let row = {};
      try { row = JSON.parse(value); } catch { row = { value: String(value) }; }
      const body = el("tbody");
      for (const [k, v] of Object.entries(row)) body.append(el("tr", {}, el("th", { text: k, scope: "row" }), el("td", { text: String(v) })));
      viewer.replaceChildren(el("table", { class: "list features" }, el("caption", { class: "muted", text: "Features" }), body));
    } else {
      viewer.replaceChildren(el("div", { class: "text", text: String(value), tabIndex: 0, role: "region", "aria-label": "Example text" }));
    }
  };
  if (entry.value !== null) draw(entry.value);
  else { showViewerMessage("Loading…"); entry.ready.then(draw, () => showViewerMessage("This example's input could not be loaded.")); }
}

const buttons = new Map(); // label -> its button, made once; each render only updates what changed

function labelButton(label) {
  const k = keyOf.get(label);
  const b = el("button", { type: "button", "data-label": label }, k ? el("kbd", { text: k }) : null, el("span", { text: label }),
    el("span", { class: "p", hidden: true }), el("span", { class: "enter", text: "Enter", hidden: true }));
  buttons.set(label, b);
  return b;
}

function renderLabels() {
  const item = current();
  const bar = $("labels");
  if (!buttons.size) bar.replaceChildren(...cfg.labels.map(labelButton));
  const probs = new Map(item && item.guess && !cfg.votes ? item.guess.top.map((t) => [t.label, t.p]) : []);
  const now = item ? effectiveLabel(item.example) : null;
  const pre = preselected(item);
  for (const [label, b] of buttons) {
    const k = keyOf.get(label);
    b.classList.toggle("guess", label === pre);
    b.classList.toggle("current", label === now);
    b.disabled = !item || !cfg.editable;
    b.setAttribute("aria-pressed", String(label === now));
    b.title = (k ? `key ${k}` : "no key: click") + (label === pre ? "; Enter accepts it" : "");
    const p = b.querySelector(".p");
    const text = probs.has(label) ? `${Math.round(probs.get(label) * 100)}%` : "";
    if (p.textContent !== text) p.textContent = text;
    p.hidden = !text;
    b.querySelector(".enter").hidden = label !== pre;
  }
}

function renderDetails() {
  const item = current();
  const dl = $("details");
  if (!item) { dl.replaceChildren(); return; }
  const ex = item.example;
  const rows = [
    ["Example", el("a", { href: `/d/${enc(cfg.dataset)}/examples/${ex.key.split("/").map(enc).join("/")}?rev=${enc(cfg.branch)}`, text: ex.key })],
    ["Committed", ex.label === null ? el("span", { class: "muted", text: "no label" }) : ex.label],
    ["Staged", ex.staged_by ? `${ex.staged_remove ? "removed" : ex.staged_label} (by ${ex.staged_by})` : el("span", { class: "muted", text: "nothing" })],
    ...cfg.votes ? [] : [["Guess", item.guess ? `${item.guess.label} · ${Math.round(item.guess.confidence * 100)}% (model v${item.guess.model})` : el("span", { class: "muted", text: "no model guess" })]],
  ]; // a consensus queue shows no guess: labelers judge for themselves
  if (item.suggestion) {
    const s = item.suggestion;
    const sure = s.confidence === null || s.confidence === undefined ? "" : ` · ${Math.round(s.confidence * 100)}%`;
    rows.push(["Suggested", el("span", { class: "suggested" }, el("strong", { text: s.label }), `${sure} by ${s.by}`, el("br"),
      el("span", { class: "muted", text: `Enter accepts · Shift+K keeps ${s.given ?? "no label"} · → skips` }))]);
    const near = s.by.includes("@") ? similarTo(item) : [];
    if (near === null) rows.push(["Similar", el("span", { class: "muted", text: "loading…" })]);
    else if (near.length) {
      rows.push(["Similar", el("span", { class: "similar" }, ...near.flatMap((n, i) => [i ? ", " : "",
        el("a", { href: `/d/${enc(cfg.dataset)}/examples/${n.key.split("/").map(enc).join("/")}?rev=${enc(cfg.branch)}`, text: n.key }),
        ` (${n.label ?? "no label"})`]))]);
    }
  }
  if (cfg.votes) rows.push(...voteRows(item));
  if (ex.split) rows.push(["Split", ex.split]);
  if (!cfg.votes && (item.reason || (item.score !== null && item.score !== undefined))) rows.push(["Why queued", `${item.reason || "—"} (score ${item.score})`]);
  const waiting = outbox.pendingFor(ex.key).length;
  if (waiting) rows.push(["Unsaved", el("span", { class: "unsaved", text: "waiting to be sent" })]);
  dl.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", {}, v)]));
}

function renderPosition() {
  if (state.grid) {
    const start = gridStart();
    $("position").textContent = `${start + 1}–${Math.min(start + GRID, state.items.length)} of ${state.items.length}${state.end ? "" : "+"} · ${state.selected.size} selected`;
    return;
  }
  $("position").textContent = state.items.length
    ? `${Math.min(state.pos + 1, state.items.length)} of ${state.items.length}${state.end ? "" : "+"} in ${cfg.queue}`
    : "";
}

function showSync(text, kind) {
  $("sync").replaceChildren(el("span", { class: kind || "", text }));
}

function renderStatus() {
  $("staged-count").textContent = String(state.staged);
  const unsent = outbox.size;
  if (state.signedOut) {
    const link = el("a", { href: `/login?next=${enc(location.pathname + location.search)}`, target: "_blank", text: "sign in again" });
    $("sync").replaceChildren(el("span", { class: "offline", text: `Your session ended: ` }), link,
      el("span", { text: ` (in a new tab). ${unsent} edit(s) wait here, unsaved, and will be sent then.` }));
  } else if (outbox.offline) {
    showSync(`The server cannot be reached: ${unsent} edit(s) unsaved, kept in this browser, retrying…`, "offline");
  } else if (unsent) {
    showSync(`Saving ${unsent} edit(s)…`, "unsaved");
  } else {
    showSync("All edits saved.", "");
  }
}

function markRecent(key, how) {
  const li = [...$("recent").children].find((n) => n.dataset.key === key);
  if (li) { li.className = how === "saved" ? "" : "pending"; li.lastChild.textContent = how === "saved" ? "saved" : how; }
}

function addRecent(key, label) {
  const li = el("li", { "data-key": key, class: "pending" }, el("span", { text: `${key} → ${label ?? "(undone)"}` }), el("span", { text: "unsaved" }));
  $("recent").prepend(li);
  while ($("recent").children.length > 50) $("recent").lastChild.remove();
}

function renderConflicts() {
  const box = $("conflicts");
  if (!state.conflicts.size) { box.hidden = true; box.replaceChildren(); return; }
  box.hidden = false;
  box.replaceChildren(...[...state.conflicts.entries()].map(([key, c]) => {
    const theirs = c.removed ? "removed" : c.label ?? "no label";
    const keep = el("button", { type: "button", text: `Keep ${theirs}` });
    const mine = el("button", { type: "button", class: "primary", text: `Use mine: ${c.drop ? "undo" : c.mine}` });
    keep.onclick = () => { state.conflicts.delete(key); renderConflicts(); };
    mine.onclick = () => {
      state.conflicts.delete(key);
      outbox.add(c.drop ? { key, drop: true, version: c.version } : { key, label: c.mine, version: c.version });
      const item = state.items.find((i) => i.example.key === key);
      if (item && !c.drop) { item.example.staged_label = c.mine; item.example.staged_by = cfg.user; }
      renderConflicts(); render();
    };
    return el("div", { class: "conflict", role: "alert" },
      el("strong", { text: `Conflict on ${key}` }),
      el("p", { text: `${c.by || "A commit"} changed it to ${theirs} while you chose ${c.drop ? "to undo" : c.mine}.` }),
      el("div", { class: "choices" }, keep, mine));
  }));
}

function render() {
  if (state.grid) renderGrid(); else renderExample();
  renderLabels(); renderDetails(); renderPosition(); renderStatus();
}

function refreshItem(item) { if (item === current()) render(); }

// ---- actions ------------------------------------------------------------------------------------------

function flash(text) { showSync(text, "unsaved"); setTimeout(renderStatus, 2500); }

/** Stage label on item (through the outbox); returns what undo needs, or null when nothing changes. */
function stage(item, label) {
  const ex = item.example;
  if (effectiveLabel(ex) === label && !ex.staged_by) return null; // already so: nothing to change
  const before = { key: ex.key, staged_label: ex.staged_label, staged_by: ex.staged_by, staged_remove: ex.staged_remove };
  outbox.add({ key: ex.key, label, version: ex.version });
  if (!ex.staged_by) state.staged += 1;
  ex.staged_label = label; ex.staged_by = cfg.user; ex.staged_remove = false;
  addRecent(ex.key, label);
  return before;
}

function choose(label) {
  const item = current();
  if (!item) return;
  if (cfg.votes) { castVote(item, label); move(1); return; }
  if (!cfg.editable) { flash(`Branch ${cfg.branch} is protected: label on another branch.`); return; }
  const before = stage(item, label);
  if (before) state.undo.push([before]);
  move(1);
}

function undo() {
  const batch = state.undo.pop();
  if (!batch) { flash("Nothing to undo."); return; }
  let item = null;
  for (const last of batch) {
    item = state.items.find((i) => i.example.key === last.key);
    if (!outbox.withdraw(last.key)) {
      // Already sent: put the example back as it was on the server before.
      if (last.staged_by) outbox.add({ key: last.key, label: last.staged_label, version: item.example.version });
      else outbox.add({ key: last.key, drop: true, version: item.example.version });
    }
    if (!last.staged_by) state.staged = Math.max(0, state.staged - 1);
    Object.assign(item.example, { staged_label: last.staged_label, staged_by: last.staged_by, staged_remove: last.staged_remove });
    addRecent(last.key, null);
  }
  if (!state.grid) state.pos = state.items.indexOf(item);
  render(); ahead();
}

// ---- grid mode (grid.js): a page of thumbnails; select with mouse or keys, a label key labels them all ---

const { GRID, COLUMNS, gridStart, toggleGrid, gridMove, gridPage, gridLabel, renderGrid } =
  gridMode({ state, render, ahead, loadMore, flash, stage, effectiveLabel, castVotes });

function move(step) {
  state.pos = Math.max(0, Math.min(state.items.length, state.pos + step));
  state.zoom = 1;
  render(); ahead();
}

function zoom(factor) {
  state.zoom = Math.max(1, Math.min(16, state.zoom * factor));
  const img = $("viewer").querySelector("img");
  if (img) fitImage(img);
}

const { openCommit, submitCommit } = commitDialog({ state, outbox, render, flash });

// ---- keys ---------------------------------------------------------------------------------------------

function renderHelp() {
  const rows = [["Enter", "accept the pre-selected label (the model's guess; in a suggestion queue, the suggestion)"],
    ["Shift+K", "suggestion queues: keep the example's label (not suggested again)"], ["→ / ←", "next / previous example without labeling (skip)"],
    ["u", "undo the last label (in the grid: the last batch)"], ["= / -", "zoom in / out (drag or scroll to pan)"], ["Shift+C", "commit the staged edits"], ["?", "this list"],
    ["g", "grid mode: a page of thumbnails"], ["arrows, Shift+arrows", "grid: move, select a range (or click, Shift+click)"], ["Space / Esc", "grid: select one more / none"],
    ["PageDown / PageUp", "grid: next / previous page"],
    ...cfg.labels.map((l) => [keyOf.get(l) || "(click)", `label ${l}`])];
  $("keys-list").replaceChildren(...rows.flatMap(([k, what]) => [el("kbd", { text: k }), el("span", { text: what })]));
}

document.addEventListener("keydown", (event) => {
  if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
  if (document.querySelector("dialog[open]")) return; // dialogs keep their keys (Escape closes them)
  const tag = (event.target && event.target.tagName) || "";
  if (["INPUT", "TEXTAREA", "SELECT"].includes(tag)) return;
  const k = event.key;
  if (k === "?") { renderHelp(); $("help-dialog").showModal(); }
  else if (k === "g") toggleGrid();
  else if (k === "u") undo();
  else if (k === "C" && event.shiftKey) openCommit();
  else if (state.grid) {
    if (k === "ArrowRight") gridMove(1, event.shiftKey);
    else if (k === "ArrowLeft") gridMove(-1, event.shiftKey);
    else if (k === "ArrowDown") gridMove(COLUMNS, event.shiftKey);
    else if (k === "ArrowUp") gridMove(-COLUMNS, event.shiftKey);
    else if (k === " ") { if (state.selected.has(state.pos)) state.selected.delete(state.pos); else state.selected.add(state.pos); render(); }
    else if (k === "Escape") { state.selected = new Set(); render(); }
    else if (k === "PageDown") gridPage(1);
    else if (k === "PageUp") gridPage(-1);
    else if (labelOf.has(k.toLowerCase()) && !event.shiftKey) gridLabel(labelOf.get(k.toLowerCase()));
    else return;
  }
  else if (k === "Enter" && tag !== "BUTTON" && tag !== "A" && current() && current().suggestion) decideSuggestion(current(), "accept");
  else if (k === "K" && event.shiftKey && current() && current().suggestion) decideSuggestion(current(), "keep");
  else if (k === "Enter" && tag !== "BUTTON" && tag !== "A") { const pre = preselected(current()); if (pre) choose(pre); else flash(cfg.votes ? "Nothing is pre-selected here: press a label's key." : "No guess to accept: press a label's key."); }
  else if (k === "ArrowRight") move(1);
  else if (k === "ArrowLeft") move(-1);
  else if (k === "=" || k === "+") zoom(2);
  else if (k === "-") zoom(0.5);
  else if (labelOf.has(k.toLowerCase()) && !event.shiftKey) choose(labelOf.get(k.toLowerCase()));
  else return;
  event.preventDefault();
});

$("labels").addEventListener("click", (event) => {
  const b = event.target.closest("button[data-label]");
  if (b) (state.grid ? gridLabel : choose)(b.dataset.label);
});
$("grid-toggle").addEventListener("click", toggleGrid);
document.querySelector('[data-action="help"]').addEventListener("click", () => { renderHelp(); $("help-dialog").showModal(); });
document.querySelector('[data-action="commit"]').addEventListener("click", openCommit);
document.querySelector('[data-action="close-commit"]').addEventListener("click", () => $("commit-dialog").close());
$("commit-form").addEventListener("submit", submitCommit);
$("queue").addEventListener("change", () => $("queue-form").requestSubmit());
let drag = null;
$("viewer").addEventListener("pointerdown", (e) => { if (state.zoom > 1) drag = { x: e.clientX, y: e.clientY }; });
window.addEventListener("pointerup", () => { drag = null; });
$("viewer").addEventListener("pointermove", (e) => {
  if (!drag) return;
  $("viewer").scrollBy(drag.x - e.clientX, drag.y - e.clientY);
  drag = { x: e.clientX, y: e.clientY };
});
$("viewer").addEventListener("wheel", (e) => { if (cfg.modality === "image" && e.ctrlKey) { e.preventDefault(); zoom(e.deltaY < 0 ? 2 : 0.5); } }, { passive: false });
window.addEventListener("resize", () => { const img = $("viewer").querySelector("img"); if (img) fitImage(img); });
window.addEventListener("beforeunload", (e) => { if (outbox.size) { e.preventDefault(); e.returnValue = ""; } });

// ---- start --------------------------------------------------------------------------------------------

window.s2workbench = { state, outbox }; // for the browser tests and the benchmark: read-only use
await loadMore();
render();
ahead();
outbox.kick();
document.body.dataset.ready = "1";
performance.mark("s2-ready"); // time to interactive: the first example drawn and the keys listening
