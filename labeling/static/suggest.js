// A queue's suggestions and votes in the workbench. In the data engine's queues (and an engineer's, with
// suggested labels) Enter accepts the suggestion through the accept endpoint, so the staged edit records where
// it came from, and Shift+K keeps the label; the details show the suspect's nearest examples by the model's
// embeddings. In a consensus queue a label is a vote: the details show how many votes are in and the labeler's
// own, never the others' votes nor the model's guess (the server sends neither), so each judges for themselves.

import { api, cfg, describe, el, enc } from "./page.js";

export function decisions({ state, current, flash, move, addRecent, effectiveLabel, renderDetails }) {
  const similar = new Map(); // key -> its nearest examples by the queueing model's embeddings (or a pending fetch)

  function similarTo(item) {
    const key = item.example.key;
    if (!similar.has(key)) {
      similar.set(key, null);
      api("GET", `/queues/${enc(cfg.queue)}/neighbours?key=${enc(key)}&k=5`).then(({ status, data }) => {
        similar.set(key, status === 200 ? data : []);
        if (current() === item) renderDetails();
      });
    }
    return similar.get(key);
  }

  async function decideSuggestion(item, how) {
    if (!cfg.editable && how === "accept") { flash(`Branch ${cfg.branch} is protected: accept on another branch.`); return; }
    const key = item.example.key;
    const path = `/queues/${enc(cfg.queue)}/${how}` + (how === "accept" ? `?branch=${enc(cfg.branch)}` : "");
    const { status, data } = await api("POST", path, { keys: [key] });
    if (status !== 200) { flash(describe(data, `Could not ${how} the suggestion for ${key} (HTTP ${status}).`)); return; }
    const label = item.suggestion.label;
    item.suggestion = null;
    if (how === "accept") {
      const ex = item.example;
      if (!ex.staged_by) state.staged += 1;
      ex.staged_label = label; ex.staged_by = cfg.user; ex.staged_remove = false;
      addRecent(key, label);
      flash(`Accepted ${label} for ${key}.`);
    } else {
      flash(`Kept ${effectiveLabel(item.example) ?? "no label"} for ${key}: not suggested again.`);
    }
    move(1);
  }

  /** Vote label for item; true when the server took it. quiet: no message (castVotes says one for all). */
  async function castVote(item, label, quiet = false) {
    const key = item.example.key;
    const { status, data } = await api("POST", `/queues/${enc(cfg.queue)}/votes`, { key, label });
    if (status !== 200) { flash(describe(data, `Could not vote for ${key} (HTTP ${status}).`)); return false; }
    item.votes = { cast: data.votes, required: data.required, mine: label };
    addRecent(key, label);
    if (current() === item) renderDetails();
    const s = data.settled;
    if (!quiet) flash(!s ? `Voted ${label} for ${key} (${data.votes} of ${data.required} votes).`
      : s.label ? `${key}: agreed on ${s.label}, staged.` : `${key}: the labelers disagree; a reviewer settles it.`);
    return true;
  }

  /** The grid's batch: the same vote for each example, one after another; how many the server took. */
  async function castVotes(items, label) {
    let done = 0;
    for (const item of items) if (await castVote(item, label, true)) done += 1;
    return done;
  }

  /** The details' rows of a consensus queue's example: how many votes are in, and the labeler's own. */
  function voteRows(item) {
    const v = item.votes || { cast: 0, required: cfg.votes, mine: null };
    return [
      ["Votes", el("span", {}, `${v.cast} of ${v.required} votes in`, el("br"),
        el("span", { class: "muted", text: `this queue asks ${v.required} labelers; the others' votes stay hidden` }))],
      ["Your vote", v.mine ? el("strong", { text: v.mine }) : el("span", { class: "muted", text: "none yet" })],
    ];
  }

  return { similarTo, decideSuggestion, castVote, castVotes, voteRows };
}
