// A queue's suggestions and votes in the workbench. In the data engine's queues (and an engineer's, with
// suggested labels) Enter accepts the suggestion through the accept endpoint, so the staged edit records where
// it came from, and Shift+K keeps the label; the details show the suspect's nearest examples by the model's
// embeddings. In a consensus queue a label is a vote, and the other labelers' votes stay hidden.

import { api, cfg, describe, enc } from "./page.js";

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

  async function castVote(item, label) {
    const key = item.example.key;
    const { status, data } = await api("POST", `/queues/${enc(cfg.queue)}/votes`, { key, label });
    if (status !== 200) { flash(describe(data, `Could not vote for ${key} (HTTP ${status}).`)); return; }
    item.voted = label;
    addRecent(key, label);
    const s = data.settled;
    flash(!s ? `Voted ${label} for ${key} (${data.votes} of ${data.required} votes).`
      : s.label ? `${key}: agreed on ${s.label}, staged.` : `${key}: the labelers disagree; a reviewer settles it.`);
  }

  return { similarTo, decideSuggestion, castVote };
}
