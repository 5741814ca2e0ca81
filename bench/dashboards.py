"""Dashboard render time in the browser: s2's compare, timeline and diff pages, and MLflow's compare-runs page.

    .venv/bin/python bench/dashboards.py            # full sizes (100,000 / 1,000 commits / 10,000 relabels), 10 loads each
    .venv/bin/python bench/dashboards.py --quick    # small sizes, a smoke run of a few minutes
    #   --loads L (default 10)  --skip-mlflow  --workdir DIR (kept)  --viewport 1280x720

One `s2 serve` on a private PostgreSQL database (bench/_scale_env.py `Server`) holds three datasets:
- `cmp`: 100,000 text examples, 10 classes, two synthetic model versions whose predictions cover
  every key (eval set `eval`; A wrong on 20%, B on 15%, independently: ~29,000 flips), with full
  metrics (per class, confusion matrix), registered as a worker would (register_model);
- `hist`: a branch `work` of 1,000 one-relabel commits made through the REST API as a labeler makes
  them (read the example, stage it with its version, commit), every 5th commit with a model version;
- `digits`: 20,000 tiny PNGs (scikit-learn's 8x8 digits, each made unique), then one commit that
  relabels 10,000 of them.
MLflow (bench/.venv-mlflow, bench/setup_mlflow.sh) serves its own SQLite store; two runs log the
same metrics (accuracy, macro_f1, loss per epoch for 10 epochs, f1 of each of 10 classes).

Measured in headless Chromium (Debian's, as bench/labeling.py): from navigation start to the page's
last table or chart painted. A probe installed before any page script checks the page's condition
on every DOM change, image load and every 5 ms; once it holds, the clock stops in a task queued from
the next animation frame, i.e. after that frame is painted. The conditions:
- s2 compare: the document parsed, the three confusion matrices and the flips table in it;
- s2 timeline: the document parsed, `table.timeline` and both `svg.chart`s in it;
- s2 diff: the document parsed, the tiles in it and every thumbnail in the viewport loaded (the
  others are lazy); the summary fragment htmx loads afterwards is measured on the same loads, to
  its counts and relabel matrix painted (the server remembers it per pair of commits: the row
  `summary, first` is the warm-up's load, before it was remembered);
- MLflow compare-runs (`#/compare-runs?runs=[..]&experiments=[..]`): its run table, the parallel
  coordinates plot's axis drawn, and every metric's row with both runs' values in the metrics grid.
Each page is loaded once to warm up, then --loads times, the pages taking turns load by load (so
whatever else the shared machine runs slows them alike), in two ways: a first visit (a new browser
context each load: empty HTTP cache, signed-in cookie only) and a revisit (one context, the page
reloaded through about:blank: scripts, styles and thumbnails in the browser's cache).
Goals (judged on the median of first visits): compare < 1 s, timeline < 500 ms, diff < 500 ms, and
s2's compare page faster than MLflow's compare-runs page (first visit and revisit). Exit status 0
when every goal is met.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
from _dashboards_mlflow import MLFLOW_METRICS, MLflow, mlflow_marks  # noqa: E402
from _dashboards_report import cpu_note, report  # noqa: E402
from _scale_env import Server  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PY = ROOT / ".venv" / "bin" / "python"
S2 = ROOT / ".venv" / "bin" / "s2"
LABELS = [f"c{i}" for i in range(10)]
USER, PASSWORD = "eve", "bench password 1"
WORDS = (
    "river stone cloud market signal harbor forest engine lantern window garden bridge copper violet thunder meadow "
    "compass pepper silver orchard canyon falcon marble ember glacier tunnel velvet saddle beacon willow"
).split()
FULL = {"compare_n": 100_000, "commits": 1000, "digits_n": 20_000, "relabels": 10_000}
QUICK = {"compare_n": 5_000, "commits": 60, "digits_n": 2_000, "relabels": 1_000}

# Installed in every document before its own scripts (the context's init script). MARKS maps a mark's
# name to a JS expression; each mark is stamped once, after the frame that follows its condition.
PROBE = """
(() => {
  if (location.protocol === "about:") return;
  const marks = __MARKS__;
  const probe = window.__probe = { dom: {}, painted: {} };
  const pending = new Set(Object.keys(marks));
  const tests = {};
  for (const [name, expr] of Object.entries(marks)) tests[name] = new Function(`return (${expr});`);
  const check = () => {
    for (const name of [...pending]) {
      let ok = false;
      try { ok = !!tests[name](); } catch (e) { ok = false; }
      if (!ok) continue;
      pending.delete(name);
      probe.dom[name] = performance.now();
      // rAF runs just before the frame is painted; a task queued from it runs just after.
      requestAnimationFrame(() => setTimeout(() => { probe.painted[name] = performance.now(); }, 0));
    }
    return pending.size === 0;
  };
  new MutationObserver(check).observe(document, { subtree: true, childList: true });
  document.addEventListener("load", check, true);  // images (load does not bubble: capture)
  document.addEventListener("readystatechange", check);
  const poll = () => { if (!check()) setTimeout(poll, 5); };
  poll();
})();
"""

PARSED = "document.readyState !== 'loading'"
# The thumbnails of the diff's first page that are in the viewport once the document is parsed and styled (the
# rest load lazily; the summary fragment swapped in afterwards may push the tiles down, so the set is taken
# then: htmx asks for it only after DOMContentLoaded, which waits for the stylesheets), all loaded.
THUMBS = (
    PARSED + " && (() => {"
    " if (!window.__firstScreen) {"
    "   if (![...document.querySelectorAll('link[rel=stylesheet]')].every(l => l.sheet)) return false;"
    "   const imgs = [...document.querySelectorAll('#diff-tiles img')];"
    "   if (!imgs.length) return false;"
    "   const seen = imgs.filter(i => { const r = i.getBoundingClientRect(); return r.bottom > 0 && r.top < innerHeight; });"
    "   window.__firstScreen = seen.length ? seen : imgs.slice(0, 1); }"
    " return window.__firstScreen.every(i => i.complete && i.naturalWidth > 0); })()"
)
S2_MARKS = {
    "compare": {
        "page": PARSED + " && document.querySelectorAll('table.matrix').length >= 3 && !!document.querySelector('table.flips tbody tr')"
    },
    "timeline": {
        "page": PARSED + " && !!document.querySelector('table.timeline tbody tr') && document.querySelectorAll('svg.chart').length >= 2"
    },
    "diff": {
        "page": THUMBS,
        "summary": "!!document.querySelector('#diff-summary .diff-counts') && !!document.querySelector('#relabel-matrix')",
    },
}


# Where a load's time went: the HTML's last byte, the requests the page made before its mark was painted (from
# the network or the cache) and when the last of them ended, and (diff) how many thumbnails the first screen had.
DETAILS = """
() => {
  const done = window.__probe.painted.page;
  const nav = performance.getEntriesByType("navigation")[0];
  const before = performance.getEntriesByType("resource").filter((e) => e.startTime < done);
  return {
    html: nav.responseEnd,
    requests: before.length,
    fetched: before.filter((e) => e.transferSize > 0).length,
    last_response: Math.max(nav.responseEnd, ...before.map((e) => e.responseEnd)),
    thumbs: window.__firstScreen ? window.__firstScreen.length : null,
  };
}
"""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def key_of(i: int) -> str:
    return f"ex{i:09d}"


def s2_cli(server: Server, *args: str, stdin: str | None = None) -> str:
    out = subprocess.run([str(S2), *args], env=server.env, input=stdin, text=True, capture_output=True)
    if out.returncode:
        raise RuntimeError(f"s2 {' '.join(args)}: {out.stderr[-2000:]}")
    return out.stdout


def in_server(server: Server, code: str, payload: object) -> str:
    """Run code with the project's interpreter on the server's database and blob store (payload as JSON on stdin)."""
    out = subprocess.run([str(PY), "-c", code], input=json.dumps(payload), env=server.env, cwd=ROOT, text=True, capture_output=True)
    if out.returncode:
        raise RuntimeError(f"registering models failed: {out.stderr[-3000:]}")
    return out.stdout


# Registers synthetic model versions as a worker finishing their runs would: predictions over the given
# keys, metrics computed from them (trainer.evaluate's classification_metrics, copied: no torch here).
REGISTER = r"""
import io, json, sys
import numpy as np, pyarrow as pa, pyarrow.parquet as pq
from server.blobs import default_blob_store
from server.registry.service import register_model
from trainer.result import TrainResult

def metrics(y_true, y_pred, labels):
    c = len(labels)
    cm = np.zeros((c, c), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    tp, support, predicted = np.diag(cm), cm.sum(1), cm.sum(0)
    precision = np.divide(tp, predicted, out=np.zeros(c), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(c), where=support > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(c), where=(precision + recall) > 0)
    accuracy = float(tp.sum() / len(y_true))
    return {"accuracy": accuracy, "macro_f1": float(f1.mean()), "loss": round(1.6 * (1 - accuracy), 6),
            "per_class": {l: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]), "support": int(support[i])}
                          for i, l in enumerate(labels)},
            "confusion_matrix": cm.tolist(), "count": len(y_true)}

job = json.loads(sys.stdin.read())
labels, store = job["labels"], default_blob_store()
for m in job["models"]:
    keys = [f"ex{i:09d}" for i in range(m["n"])] if "n" in m else m["keys"]
    rng = np.random.default_rng(m["seed"])
    truth = np.array(m["truth"], dtype=np.int64) if "truth" in m else rng.integers(0, len(labels), len(keys))
    wrong = rng.random(len(keys)) < m["wrong"]
    pred = np.where(wrong, (truth + 1 + rng.integers(0, len(labels) - 1, len(keys))) % len(labels), truth)
    t = pa.table({"eval_set": ["eval"] * len(keys), "key": keys, "label": [labels[i] for i in truth],
                  "predicted": [labels[i] for i in pred]})
    buf = io.BytesIO(); pq.write_table(t, buf)
    found = metrics(truth, pred, labels)
    epochs = [round(found["accuracy"] * (0.6 + 0.04 * e), 6) for e in range(1, 11)]
    curves = {"eval/accuracy": epochs, "eval/loss": [round(2.3 - 0.18 * e, 6) for e in range(10)], "train/loss": [round(2.2 - 0.19 * e, 6) for e in range(10)]}
    r = TrainResult(weights=b"w%d" % m["run"], spec={"template": "bench"}, spec_hash=f"{m['run']:064x}", metrics={"eval": found},
                    curves=curves, predictions=buf.getvalue(), device="cpu", epochs_run=10, duration_s=1.0, labels=labels)
    print(register_model(m["run"], r, store), flush=True)
"""


# ---- s2: the three datasets ---------------------------------------------------------------------------


def import_csv(server: Server, name: str, modality: str, path: Path) -> None:
    server.call("POST", "/datasets", json={"name": name, "modality": modality, "labels": LABELS})
    t = time.perf_counter()
    s2_cli(server, "import", name, str(path))
    log(f"[s2] {name}: imported in {time.perf_counter() - t:.0f} s")


def text_rows(path: Path, n: int, seed: int) -> list[int]:
    """n short texts with a label each (key, label, text); the labels' indices."""
    rng = random.Random(seed)
    truth = []
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "label", "text"])
        for i in range(n):
            t = rng.randrange(len(LABELS))
            truth.append(t)
            w.writerow([key_of(i), LABELS[t], " ".join(rng.choices(WORDS, k=rng.randint(8, 14)))])
    return truth


def seed_compare(server: Server, n: int, work: Path) -> str:
    """Dataset cmp of n examples and two model versions scored on all of them; the compare page's path."""
    truth = text_rows(work / "cmp.csv", n, seed=1)
    import_csv(server, "cmp", "text", work / "cmp.csv")
    runs = [server.call("POST", "/datasets/cmp/runs", json={}).json()["id"] for _ in range(2)]
    t = time.perf_counter()
    models = [
        {"run": runs[0], "n": n, "truth": truth, "seed": 11, "wrong": 0.20},
        {"run": runs[1], "n": n, "truth": truth, "seed": 12, "wrong": 0.15},
    ]
    made = in_server(server, REGISTER, {"labels": LABELS, "models": models}).split()
    log(f"[s2] cmp: registered {made} in {time.perf_counter() - t:.0f} s")
    return "/d/cmp/compare/1...2"


def seed_timeline(server: Server, commits: int, work: Path) -> str:
    """Dataset hist: a branch of `commits` one-relabel commits, every 5th with a model version; the timeline's path."""
    n = 2000
    text_rows(work / "hist.csv", n, seed=2)
    import_csv(server, "hist", "text", work / "hist.csv")
    server.call("POST", "/datasets/hist/branches", json={"name": "work"})
    rng = random.Random(3)
    made, t = [], time.perf_counter()
    for _ in range(commits):
        key = key_of(rng.randrange(n))
        seen = server.call("GET", f"/datasets/hist/examples/{key}", params={"rev": "work"}).json()
        label = LABELS[(LABELS.index(seen["staged_label"] or seen["label"]) + 1) % len(LABELS)]
        server.call("PUT", f"/datasets/hist/edits/{key}", params={"branch": "work"}, json={"label": label, "version": seen["version"]})
        made.append(
            server.call("POST", "/datasets/hist/commits", json={"branch": "work", "message": f"fix {key}: {label}"}).json()["commit"]["id"]
        )
    log(f"[s2] hist: {commits} commits through the API in {time.perf_counter() - t:.0f} s")
    models = []
    for j, commit in enumerate(made[4::5]):
        run = server.call("POST", "/datasets/hist/runs", json={"rev": commit}).json()["id"]
        models.append(
            {"run": run, "keys": [key_of(i) for i in range(0, n, 4)], "seed": 100 + j, "wrong": 0.25 - 0.1 * j / max(1, len(made) // 5)}
        )
    t = time.perf_counter()
    in_server(server, REGISTER, {"labels": LABELS, "models": models})
    log(f"[s2] hist: {len(models)} model versions in {time.perf_counter() - t:.0f} s")
    return "/d/hist/commits?branch=work"


def seed_diff(server: Server, n: int, relabels: int, work: Path) -> str:
    """Dataset digits: n unique 8x8 PNGs, then one commit relabeling `relabels` of them; the diff page's path."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = work / "img"
    images.mkdir(parents=True, exist_ok=True)
    with open(work / "digits.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "label", "image"])
        for i in range(n):
            pixels = (digits.images[i % len(digits.images)] * 15).astype(np.uint8).reshape(-1)
            pixels[:16] |= np.array([(i >> b) & 1 for b in range(16)], dtype=np.uint8)  # low bits: every image its own bytes
            buf = io.BytesIO()
            Image.fromarray(pixels.reshape(8, 8), mode="L").save(buf, format="PNG")
            (images / f"{i}.png").write_bytes(buf.getvalue())
            w.writerow([key_of(i), LABELS[digits.target[i % len(digits.target)]], f"img/{i}.png"])
    import_csv(server, "digits", "image", work / "digits.csv")

    def label_of(i: int) -> int:
        return int(digits.target[i % len(digits.target)])

    before = server.call("GET", "/datasets/digits/commits", params={"rev": "main", "limit": 1}).json()["items"][0]["id"]
    server.call("POST", "/datasets/digits/branches", json={"name": "relabel"})
    keys = [key_of(i) for i in sorted(random.Random(4).sample(range(n), relabels))]
    t = time.perf_counter()
    for start in range(0, len(keys), 1000):
        # each to another class than its own: its label + 1..9
        edits = [{"key": k, "label": LABELS[(label_of(int(k[2:])) + 1 + int(k[2:]) % 9) % 10]} for k in keys[start : start + 1000]]
        server.call("POST", "/datasets/digits/edits", params={"branch": "relabel"}, json={"edits": edits})
    after = server.call("POST", "/datasets/digits/commits", json={"branch": "relabel", "message": f"relabel {relabels}"}).json()["commit"][
        "id"
    ]
    log(f"[s2] digits: {relabels:,} relabels staged and committed in {time.perf_counter() - t:.0f} s")
    return f"/d/digits/diff/{before}...{after}"


def s2_user(server: Server) -> None:
    s2_cli(server, "user", "add", USER, "--role", "engineer")
    s2_cli(server, "user", "passwd", USER, stdin=PASSWORD + "\n")


def s2_signed_in(browser, server: Server) -> dict:
    """The cookies of a signed-in session (storage state), to open fresh contexts with."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{server.base}/login")
    page.fill("#name", USER)
    page.fill("#password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/login" not in url)
    state = context.storage_state()
    context.close()
    return state


# ---- measuring -----------------------------------------------------------------------------------------------


class Target:
    """One page: its URL, its marks, the cookies it needs; a context kept open for revisits."""

    def __init__(self, name: str, tool: str, url: str, marks: dict, state: dict | None, viewport: dict, shots: Path):
        self.name, self.tool, self.url, self.marks, self.state, self.viewport, self.shots = name, tool, url, marks, state, viewport, shots
        self.script = PROBE.replace("__MARKS__", json.dumps(marks))
        self.times: dict[str, dict[str, list[float]]] = {"first": {}, "revisit": {}}
        self.details: dict[str, list[dict]] = {"first": [], "revisit": []}
        self.warm_context = None
        self.warm_page = None

    def _context(self, browser):
        context = browser.new_context(viewport=self.viewport, storage_state=self.state)
        context.add_init_script(self.script)
        return context

    def _load(self, page) -> tuple[dict, float]:
        page.goto("about:blank")
        page.goto(self.url, wait_until="commit")
        deadline = time.monotonic() + 90
        want = len(self.marks)
        while True:
            found = page.evaluate("() => window.__probe ? window.__probe.painted : {}")
            if len(found) >= want:
                break
            if time.monotonic() > deadline:
                shot = self.shots / f"timeout-{self.tool}-{self.name}.png"
                page.screenshot(path=str(shot))
                raise RuntimeError(f"{self.tool} {self.name}: {set(self.marks) - set(found)} never painted ({self.url}); see {shot}")
            time.sleep(0.01)
        return found, page.evaluate(DETAILS)

    def load(self, browser, mode: str, record: bool) -> dict:
        if mode == "first":
            context = self._context(browser)
            try:
                found, details = self._load(context.new_page())
            finally:
                context.close()
        else:
            if self.warm_page is None:
                self.warm_context = self._context(browser)
                self.warm_page = self.warm_context.new_page()
            found, details = self._load(self.warm_page)
        if record:
            for mark, ms in found.items():
                self.times[mode].setdefault(mark, []).append(ms)
            self.details[mode].append(details)
        return found

    def screenshot(self, browser) -> None:
        context = self._context(browser)
        page = context.new_page()
        self._load(page)
        page.screenshot(path=str(self.shots / f"dashboards-{self.tool}-{self.name}.png"))
        context.close()

    def close(self) -> None:
        if self.warm_context is not None:
            self.warm_context.close()


def measure(browser, targets: list[Target], loads: int) -> dict:
    """Warm-up, then the pages taking turns, first visits and revisits alike; the first summary's time."""
    first_summary = None
    for mode in ("first", "revisit"):
        for t in targets:
            found = t.load(browser, mode, record=False)
            if t.name == "diff" and mode == "first":
                first_summary = found.get("summary")
    for i in range(loads):
        for mode in ("first", "revisit"):
            for t in targets:
                t.load(browser, mode, record=True)
        log(f"  load {i + 1}/{loads}")
    return {"first_summary": first_summary}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help=f"small sizes: {QUICK}")
    p.add_argument("--loads", type=int, default=10, help="measured loads per page and way (after one warm-up)")
    p.add_argument("--skip-mlflow", action="store_true", help="s2 only")
    p.add_argument("--viewport", default="1280x720")
    p.add_argument("--workdir", type=Path, help="work in DIR and keep it (default: a temp dir, removed)")
    args = p.parse_args()
    sizes = QUICK if args.quick else FULL
    if not Path(CHROMIUM).exists():
        subprocess.run(["bash", str(ROOT / "scripts" / "setup-browser.sh")], check=True)
    from playwright.sync_api import sync_playwright

    width, height = (int(v) for v in args.viewport.split("x"))
    viewport = {"width": width, "height": height}
    work = args.workdir or Path(tempfile.mkdtemp(prefix="s2-bench-dashboards-"))
    work.mkdir(parents=True, exist_ok=True)
    (work / "s2").mkdir(exist_ok=True)
    started = time.perf_counter()
    server = Server(work / "s2")
    mlflow = None
    targets: dict[tuple[str, str], Target] = {}
    try:
        s2_user(server)
        paths = {
            "compare": seed_compare(server, sizes["compare_n"], work / "s2"),
            "timeline": seed_timeline(server, sizes["commits"], work / "s2"),
            "diff": seed_diff(server, sizes["digits_n"], sizes["relabels"], work / "s2"),
        }
        if not args.skip_mlflow:
            mlflow = MLflow(work)
        log(f"seeded in {time.perf_counter() - started:.0f} s; measuring")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            state = s2_signed_in(browser, server)
            for name, path in paths.items():
                targets[("s2", name)] = Target(name, "s2", server.base + path, S2_MARKS[name], state, viewport, work)
            if mlflow is not None:
                targets[("mlflow", "compare")] = Target("compare", "mlflow", mlflow.url, mlflow_marks(MLFLOW_METRICS), None, viewport, work)
            order = (
                [targets[("s2", "compare")]]
                + ([targets[("mlflow", "compare")]] if mlflow else [])
                + [targets[("s2", "timeline")], targets[("s2", "diff")]]
            )
            try:
                extra = measure(browser, order, args.loads)
                if args.workdir:
                    for t in order:
                        t.screenshot(browser)
            finally:
                for t in order:
                    t.close()
                browser.close()
    finally:
        server.close()
        if mlflow is not None:
            mlflow.close()
    text, ok = report(targets, sizes, args.loads, extra, mlflow.version if mlflow else None, cpu_note())
    print(text)
    log(f"done in {time.perf_counter() - started:.0f} s")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
