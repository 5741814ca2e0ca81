// The workbench's commit dialog: what the staged edits change (counts and thumbnails), a message, then
// the commit's id. Unsaved edits in the outbox are sent first; nothing is committed while any is pending.

import { $, api, cfg, describe, el, enc, mediaUrl, sleep } from "./page.js";

export function commitDialog({ state, outbox, render, flash }) {
  async function openCommit() {
    if (!cfg.editable) { flash(`Branch ${cfg.branch} is protected: nothing to commit here.`); return; }
    const dialog = $("commit-dialog");
    $("commit-result").replaceChildren();
    $("commit-form").hidden = false;
    dialog.showModal();
    $("commit-message").focus();
    const summary = $("commit-summary");
    if (outbox.size) summary.replaceChildren(el("p", { class: "notice", text: `${outbox.size} edit(s) are not saved yet; they are sent before the commit.` }));
    else summary.replaceChildren(el("p", { class: "muted", text: "Reading the staged edits…" }));
    const res = await api("GET", `/queue?branch=${enc(cfg.branch)}&queue=changed&limit=200`).catch(() => null);
    if (!res || res.status !== 200) { summary.append(el("p", { class: "error", text: describe(res && res.data, "the staged edits could not be read") })); return; }
    const items = res.data.items;
    const byChange = new Map();
    for (const { example: ex } of items) {
      const to = ex.staged_remove ? "removed" : ex.staged_label;
      const change = `${ex.label ?? "unlabeled"} → ${to}`;
      byChange.set(change, (byChange.get(change) || 0) + 1);
    }
    const total = `${items.length}${res.data.next_cursor ? "+" : ""}`;
    const table = el("table", { class: "list" }, el("thead", {}, el("tr", {}, el("th", { text: "Change", scope: "col" }), el("th", { text: "Examples", scope: "col" }))),
      el("tbody", {}, ...[...byChange.entries()].sort((a, b) => b[1] - a[1]).map(([c, n]) => el("tr", {}, el("td", { text: c }), el("td", { text: String(n) })))));
    const thumbs = el("div", { class: "thumbs", role: "group", "aria-label": "What changes" }, ...items.slice(0, 60).map(({ example: ex }) =>
      el("figure", {}, cfg.modality === "image" ? el("img", { src: mediaUrl(ex), alt: ex.key, loading: "lazy" }) : null,
        el("figcaption", { text: `${cfg.modality === "image" ? "" : ex.key + ": "}${ex.staged_remove ? "removed" : ex.staged_label}` }))));
    summary.replaceChildren(...(outbox.size ? [el("p", { class: "notice", text: `${outbox.size} edit(s) not saved yet: they are sent first.` })] : []),
      el("p", { text: `${total} staged edit(s) on ${cfg.branch}:` }), table, thumbs);
  }

  async function submitCommit(event) {
    event.preventDefault();
    const message = $("commit-message").value.trim();
    const result = $("commit-result");
    if (!message) { result.replaceChildren(el("p", { class: "error", text: "Write a message: what these labels fix." })); return; }
    if (outbox.size) {
      result.replaceChildren(el("p", { class: "muted", text: "Sending the unsaved edits first…" }));
      outbox.retryNow();
      for (let i = 0; i < 40 && outbox.size; i++) await sleep(250);
      if (outbox.size) { result.replaceChildren(el("p", { class: "error", text: `${outbox.size} edit(s) could not be sent yet (is the server reachable?): commit once they are saved.` })); return; }
    }
    let res;
    try { res = await api("POST", "/commits", { message, branch: cfg.branch }); } catch { res = null; }
    if (!res) { result.replaceChildren(el("p", { class: "error", text: "The server cannot be reached: nothing was committed; try again." })); return; }
    if (res.status === 201) {
      const c = res.data.commit;
      state.staged = 0; state.undo = [];
      for (const i of state.items) if (i.example.staged_by) { i.example.label = i.example.staged_remove ? null : i.example.staged_label; i.example.staged_by = null; i.example.staged_label = null; }
      $("commit-form").hidden = true;
      result.replaceChildren(el("p", { role: "status", text: `Committed ${c.id.slice(0, 12)}: ${c.changes} change(s).` }),
        el("p", {}, el("span", { class: "mono", text: c.id, id: "commit-id" })),
        el("form", { method: "dialog" }, el("button", { type: "submit", text: "Back to labeling" })));
      render();
    } else if (res.status === 200) {
      state.staged = 0;
      result.replaceChildren(el("p", { text: `Nothing to commit: every staged edit matched the branch (${res.data.dropped} dropped).` }));
      render();
    } else {
      result.replaceChildren(el("p", { class: "error", text: describe(res.data, `the commit failed (${res.status})`) }));
    }
  }

  return { openCommit, submitCommit };
}
