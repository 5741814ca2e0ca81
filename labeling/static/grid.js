// The workbench's grid mode: a page of thumbnails. Arrows move, Shift+arrows (or Shift+click) select a range,
// Space or Ctrl+click one more, a label's key labels every selected example at once (one undo step); in a
// consensus queue it casts that vote for each of them instead.

import { $, cfg, el, mediaUrl } from "./page.js";

export function gridMode({ state, render, ahead, loadMore, flash, stage, effectiveLabel, castVotes }) {
  const GRID = 48;
  const COLUMNS = 8;

  function gridStart() { return Math.floor(state.pos / GRID) * GRID; }

  function toggleGrid() {
    state.grid = !state.grid;
    state.selected = new Set();
    state.anchor = state.pos;
    $("grid-toggle").setAttribute("aria-pressed", String(state.grid));
    document.body.classList.toggle("grid-mode", state.grid);
    if (state.grid) ensureLoaded(gridStart() + GRID).then(render); else render();
  }

  async function ensureLoaded(count) {
    while (state.items.length < count && !state.end) await loadMore();
  }

  function gridMove(step, extend) {
    const start = gridStart();
    const last = Math.min(state.items.length, start + GRID) - 1;
    const next = Math.max(start, Math.min(last, state.pos + step));
    state.pos = next;
    if (extend) {
      state.selected = new Set();
      const [a, b] = [Math.min(state.anchor, next), Math.max(state.anchor, next)];
      for (let i = a; i <= b; i++) state.selected.add(i);
    } else {
      state.anchor = next;
    }
    render();
  }

  function gridPage(step) {
    const target = gridStart() + step * GRID;
    if (target < 0) return;
    ensureLoaded(target + GRID).then(() => {
      if (target >= state.items.length) { flash("The end of the queue."); return; }
      state.pos = target; state.anchor = target; state.selected = new Set();
      render(); ahead();
    });
  }

  function gridLabel(label) {
    if (cfg.votes) {
      const chosen = state.selected.size ? [...state.selected] : [state.pos];
      state.selected = new Set();
      castVotes(chosen.map((i) => state.items[i]).filter(Boolean), label).then((done) => { render(); flash(`${done} vote(s) for ${label}.`); });
      return;
    }
    if (!cfg.editable) { flash(`Branch ${cfg.branch} is protected: label on another branch.`); return; }
    const chosen = state.selected.size ? [...state.selected] : [state.pos];
    const batch = chosen.map((i) => state.items[i]).filter(Boolean).map((item) => stage(item, label)).filter(Boolean);
    if (batch.length) state.undo.push(batch);
    flash(`${batch.length} example(s) labeled ${label}.`);
    state.selected = new Set();
    render();
  }

  function renderGrid() {
    const start = gridStart();
    const items = state.items.slice(start, start + GRID);
    const grid = el("div", { class: "grid", role: "listbox", "aria-multiselectable": "true", "aria-label": "Examples on this page" });
    items.forEach((item, n) => {
      const i = start + n;
      const ex = item.example;
      const label = effectiveLabel(ex);
      const tile = el("div", {
        class: ["tile", state.selected.has(i) ? "selected" : "", i === state.pos ? "focus" : "", ex.staged_by ? "staged" : ""].join(" ").trim(),
        role: "option", "aria-selected": String(state.selected.has(i)), "data-index": String(i), id: `tile-${i}`,
      },
      cfg.modality === "image" ? el("img", { src: mediaUrl(ex), alt: "", draggable: false }) : el("span", { class: "snippet", text: String(ex.inline ?? ex.key).slice(0, 80) }),
      el("span", { class: "caption", text: `${ex.key} · ${label ?? "—"}` }));
      grid.append(tile);
    });
    grid.setAttribute("aria-activedescendant", `tile-${state.pos}`);
    grid.tabIndex = 0;
    $("viewer").replaceChildren(grid);
  }

  $("viewer").addEventListener("click", (event) => {
    const tile = event.target.closest(".tile");
    if (!tile) return;
    const i = Number(tile.dataset.index);
    if (event.shiftKey) { state.pos = i; gridMove(0, true); return; }
    if (event.ctrlKey || event.metaKey) { if (state.selected.has(i)) state.selected.delete(i); else state.selected.add(i); }
    else state.selected = new Set([i]);
    state.pos = i; state.anchor = i;
    render();
  });

  return { GRID, COLUMNS, gridStart, toggleGrid, gridMove, gridPage, gridLabel, renderGrid };
}
