// One training run, live. Follows GET /api/v1/runs/ID/events (Server-Sent Events; the session cookie signs the
// stream in) and redraws the page the server rendered: state, epoch, progress, the curves as SVG built with
// createElementNS, the per-epoch table, the log and the error. Engineers cancel and retry through the REST API.
// Everything from the run reaches the page as text (textContent, attributes), never as markup.

import { $, call, cfg, describe, el } from "../labeling/page.js";

const SVG = "http://www.w3.org/2000/svg";
// The chart layout: the same numbers as server/dashboards/run_chart.py (change both together).
const WIDTH = 640, HEIGHT = 220, LEFT = 56, RIGHT = 16, TOP = 12, BOTTOM = 40;
const TERMINAL = new Set(cfg.terminal);
let run = cfg.run;

// --- numbers as the server prints them (runs.py: human_seconds, when; run_chart.py: tick_label) ---

function humanSeconds(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60), secs = Math.floor(seconds) % 60;
  if (minutes < 60) return `${minutes} m ${String(secs).padStart(2, "0")} s`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} m`;
}

function when(iso) {
  return iso ? `${new Date(iso).toISOString().slice(0, 19).replace("T", " ")} UTC` : "—";
}

const fixed = (value, digits) => (typeof value === "number" ? value.toFixed(digits) : "—");

function niceCeiling(value) {
  if (!(value > 0) || !Number.isFinite(value)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 2.5, 5, 10].map((m) => power * m).find((v) => v >= value * (1 - 1e-9));
}

const tickLabel = (value) => (value === 0 ? "0" : Number(value.toPrecision(3)).toString());

// --- the charts ---

function scale(xMax, yMax) {
  const round1 = (v) => Math.round(v * 10) / 10;
  return (x, y) => [
    round1(LEFT + (WIDTH - RIGHT - LEFT) * (x / xMax)),
    round1(HEIGHT - BOTTOM - (HEIGHT - BOTTOM - TOP) * (Math.min(Math.max(y, 0), yMax) / yMax)),
  ];
}

function ticks(toXY, xMax, yMax) {
  const xTicks = [], yTicks = [];
  for (let i = 0; i < 5; i++) {
    const x = Math.round((xMax * i) / 4);
    if (!xTicks.length || xTicks[xTicks.length - 1][1] !== tickLabel(x)) xTicks.push([toXY(x, 0)[0], tickLabel(x)]);
    const y = (yMax * i) / 4;
    yTicks.push([toXY(0, y)[1], tickLabel(y)]);
  }
  return { xTicks, yTicks };
}

function lossChart(progress) {
  const p = progress || {};
  const points = (p.points || []).filter((pt) => pt[1] !== null);
  const evals = (p.epoch_ends || []).filter((e) => e.eval_loss !== null && e.eval_loss !== undefined && e.step).map((e) => [e.step, e.eval_loss]);
  if (!points.length && !evals.length) return null;
  const xMax = Math.max(p.total_steps || 0, ...points.map((pt) => pt[0]), ...evals.map((e) => e[0])) || 1;
  const yMax = niceCeiling(Math.max(...points.map((pt) => pt[1]), ...evals.map((e) => e[1])));
  const toXY = scale(xMax, yMax);
  const chart = { xTitle: "step", yTitle: "loss", lines: [], ...ticks(toXY, xMax, yMax) };
  if (points.length) chart.lines.push({ name: "train loss", css: "train", points: points.map(([s, v]) => toXY(s, v)), dots: "last" });
  if (evals.length) chart.lines.push({ name: "eval loss (epoch end)", css: "eval", points: evals.map(([s, v]) => toXY(s, v)), dots: "all" });
  return chart;
}

function accuracyChart(progress) {
  const p = progress || {};
  const rows = (p.epoch_ends || []).filter((e) => typeof e.eval_accuracy === "number").map((e) => [e.epoch, e.eval_accuracy]);
  if (!rows.length) return null;
  const xMax = Math.max(p.epochs || 0, ...rows.map((r) => r[0])) || 1;
  const toXY = scale(xMax, 1);
  const chart = { xTitle: "epoch", yTitle: "accuracy", lines: [], ...ticks(toXY, xMax, 1) };
  chart.lines.push({ name: "eval accuracy", css: "accuracy", points: rows.map(([e, v]) => toXY(e, v)), dots: "all" });
  return chart;
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function drawChart(chart, id, title, desc) {
  const bottom = HEIGHT - BOTTOM, right = WIDTH - RIGHT;
  const root = svg("svg", { id: `${id}-svg`, class: "run-chart", viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-labelledby": `${id}-title ${id}-desc` });
  root.append(svg("title", { id: `${id}-title` }, title), svg("desc", { id: `${id}-desc` }, desc));
  const grid = svg("g", { class: "grid" });
  for (const [y] of chart.yTicks) grid.append(svg("line", { x1: LEFT, x2: right, y1: y, y2: y }));
  const axis = svg("g", { class: "axis" });
  axis.append(svg("line", { x1: LEFT, x2: right, y1: bottom, y2: bottom }), svg("line", { x1: LEFT, x2: LEFT, y1: TOP, y2: bottom }));
  for (const [x, label] of chart.xTicks) axis.append(svg("text", { x, y: bottom + 16, "text-anchor": "middle" }, label));
  for (const [y, label] of chart.yTicks) axis.append(svg("text", { x: LEFT - 6, y: y + 4, "text-anchor": "end" }, label));
  axis.append(
    svg("text", { class: "axis-title", x: (LEFT + right) / 2, y: HEIGHT - 4, "text-anchor": "middle" }, chart.xTitle),
    svg("text", { class: "axis-title", transform: "rotate(-90)", x: -(TOP + bottom) / 2, y: 14, "text-anchor": "middle" }, chart.yTitle),
  );
  root.append(grid, axis);
  for (const line of chart.lines) {
    root.append(svg("polyline", { class: `series ${line.css}`, points: line.points.map(([x, y]) => `${x},${y}`).join(" ") }));
    const dots = line.dots === "all" ? line.points : line.points.slice(-1);  // the train loss: where it is now
    for (const [cx, cy] of dots) root.append(svg("circle", { class: `dot ${line.css}`, cx, cy, r: 3 }));
  }
  const legend = el("ul", { class: "legend" });
  for (const line of chart.lines) legend.append(el("li", {}, el("span", { class: `swatch ${line.css}`, "aria-hidden": "true" }), line.name));
  return [root, legend];
}

function drawCurves(progress, live) {
  const loss = lossChart(progress), accuracy = accuracyChart(progress);
  $("loss-chart").replaceChildren(
    ...(loss
      ? drawChart(loss, "loss", "Training loss by step", "Train loss at each reported step, and eval loss at the end of each epoch; the table below lists them per epoch.")
      : [el("p", { class: "muted", text: live ? "No loss reported yet: the curve appears once training starts." : "This run reported no loss." })]),
  );
  $("accuracy-chart").hidden = !accuracy;
  $("accuracy-chart").replaceChildren(
    ...(accuracy ? drawChart(accuracy, "accuracy", "Eval accuracy by epoch", "Accuracy on the eval split at the end of each epoch; the table below lists it.") : []),
  );
  const rows = ((progress || {}).epoch_ends || []).map((e) =>
    el("tr", {}, el("th", { scope: "row", text: String(e.epoch) }), el("td", { text: String(e.step) }),
      el("td", { text: fixed(e.loss, 4) }), el("td", { text: fixed(e.eval_loss, 4) }), el("td", { text: fixed(e.eval_accuracy, 3) })),
  );
  const empty = el("tr", {}, el("td", { colSpan: 5, class: "muted", text: "No epoch has finished yet." }));
  document.querySelector("#epoch-table tbody").replaceChildren(...(rows.length ? rows : [empty]));
}

// --- the page's numbers ---

function elapsed(r) {
  if (!r.started_at) return null;
  const end = r.finished_at ? new Date(r.finished_at) : new Date();
  return (end - new Date(r.started_at)) / 1000;
}

function drawProgress(r) {
  const p = r.progress || {}, live = !TERMINAL.has(r.state);
  $("run-epoch").textContent = p.epoch !== undefined ? `Epoch ${p.epoch} of ${p.epochs}` : r.state === "queued" ? "Waiting for a worker" : "No progress reported";
  const bar = $("run-progress");
  if (p.total_steps) { bar.max = p.total_steps; bar.value = p.step || 0; }
  else if (!live) { bar.max = 1; bar.value = r.state === "succeeded" ? 1 : 0; }
  else { bar.removeAttribute("value"); bar.removeAttribute("max"); }  // indeterminate: it may still start
  $("run-step").textContent = p.step !== undefined ? `${p.step} of ${p.total_steps || "?"}` : "—";
  $("run-loss").textContent = fixed(p.loss, 4);
  $("run-eta").textContent = live && typeof p.eta_s === "number" ? humanSeconds(p.eta_s) : "—";
  $("run-elapsed").textContent = humanSeconds(elapsed(r));
}

function drawFacts(r) {
  $("run-attempt").textContent = String(r.attempt);
  $("run-worker").textContent = r.worker_host || "—";
  $("run-device").textContent = r.device || "—";
  $("run-started").textContent = when(r.started_at);
  $("run-finished").textContent = when(r.finished_at);
  $("run-duration").textContent = r.finished_at ? humanSeconds(elapsed(r)) : "—";
  const dataset = r.model ? r.model.slice(0, r.model.lastIndexOf("@")) : null;
  $("run-model").replaceChildren(r.model ? el("a", { href: `/d/${encodeURIComponent(dataset)}/models`, text: r.model }) : "—");
}

function drawEnd(r) {
  $("error-panel").hidden = !r.error;
  $("run-error").textContent = r.error || "";
  $("run-log").hidden = !r.log_tail;
  $("run-log").textContent = r.log_tail || "";
  $("run-log-empty").hidden = Boolean(r.log_tail);
  $("run-log-empty").textContent = TERMINAL.has(r.state)
    ? "No log lines were kept: a worker keeps them when a run fails or is cancelled."
    : "The worker keeps the last lines of its log when a run fails or is cancelled.";
  if ($("cancel-run")) $("cancel-run").hidden = TERMINAL.has(r.state);
  if ($("retry-run")) $("retry-run").hidden = !["failed", "cancelled"].includes(r.state);
}

function update(next) {
  const before = run.state;
  run = next;
  const pill = $("run-state");
  pill.textContent = run.state;
  pill.className = `pill state state-${run.state}`;
  document.body.dataset.state = run.state;
  drawProgress(run);
  drawCurves(run.progress, !TERMINAL.has(run.state));
  drawFacts(run);
  drawEnd(run);
  if (run.state !== before) $("run-live").textContent = TERMINAL.has(run.state) ? `The run has ended: ${run.state}.` : `The run is ${run.state}; this page follows it live.`;
}

// --- live updates ---

function follow() {
  if (TERMINAL.has(run.state)) return;
  const source = new EventSource(`/api/v1/runs/${run.id}/events?interval=0.25`);
  source.addEventListener("run", (event) => update(JSON.parse(event.data)));
  source.addEventListener("end", () => source.close());
  source.onerror = () => {
    $("run-live").textContent = source.readyState === EventSource.CLOSED
      ? "Live updates stopped: reload the page to see the latest state."
      : "Connection lost; reconnecting…";
  };
}

// --- cancel and retry (engineers) ---

function say(message) {
  $("action-message").hidden = !message;
  $("action-message").textContent = message || "";
}

async function act(button, path, done) {
  button.disabled = true;
  say("");
  try {
    const { status, data } = await call("POST", path);
    if (status >= 200 && status < 300) done(data);
    else say(describe(data, `the server answered ${status}`));
  } catch {
    say("the server could not be reached: check the connection and try again");
  } finally {
    button.disabled = false;
  }
}

function wireActions() {
  $("cancel-run")?.addEventListener("click", (event) =>
    act(event.currentTarget, `/runs/${run.id}/cancel`, (data) => {
      update(data);
      if (data.state === "running") $("run-live").textContent = "Cancel requested: the run stops at its next step.";
    }));
  $("retry-run")?.addEventListener("click", (event) =>
    act(event.currentTarget, `/runs/${run.id}/retry`, (data) => window.location.assign(`/runs/${data.id}`)));
}

wireActions();
follow();
document.body.dataset.state = run.state;
document.body.dataset.ready = "1";
