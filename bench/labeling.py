"""Labeling speed in the browser: s2's workbench and Label Studio's labeling page, side by side, in Chromium.

    python bench/labeling.py [--n 1000000] [--tasks 200] [--skip-ls] [--workdir DIR]

Both tools get the same --tasks 8x8 digit images (scikit-learn's bundled digits) with the same
model predictions (a deliberately imperfect model: right on 80%). A fast labeler is simulated
by Playwright in headless Chromium: no think time, one key per example. On s2 it presses the
label's key (Enter when the pre-selected guess is right) in the workbench, on a dataset of --n
examples whose review queue holds the tasks. On Label Studio it presses the choice's hotkey
(nothing when the pre-annotation is right) and Ctrl+Enter to submit, in the project's label
stream, its own server started from bench/.venv-ls (bench/setup_label_studio.sh).

Measured in the page: from the keydown to the next example painted (a MutationObserver sees the
next image loaded; the clock stops in a task queued from the next animation frame, i.e. after
that frame is painted), p50 and p95; labels per minute over the whole run (what
the interface allows a labeler who never hesitates); and each labeling page's time to interactive
(navigation start to the first example drawn). Goals: s2's next example p95 < 50 ms at 1,000,000
examples, s2 >= 3x Label Studio's labels per minute, s2's time to interactive < 1 s.
"""

from __future__ import annotations

import argparse
import base64
import csv
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
from _scale_env import Server, wait_until_up  # noqa: E402

LABELS = [str(d) for d in range(10)]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PASSWORD = "bench password 1"
LS_BIN = BENCH / ".venv-ls" / "bin"
LS_READY_CSS = ".lsf-choices input:checked"  # Label Studio has put the task's pre-annotation on the page

# Installed in each labeling page: keydown (capture) starts a clock; the next example's image appearing
# (a new <img> or a changed src, loaded) stops it once the frame that shows it is painted.
# `ready` is a page expression that must also hold before the example counts as shown (on Label Studio:
# the pre-annotation selected, which is when its hotkeys act on the new task).
PROBE = """
(ready) => {
  if (window.__probe) return;
  const probe = window.__probe = { t0: null, times: [], seen: new Set() };
  const isReady = new Function(`return (${ready});`);
  probe.dom = [];
  const mark = () => {
    if (probe.t0 === null) return;
    const t0 = probe.t0; probe.t0 = null;
    const settle = () => {
      if (!isReady()) { requestAnimationFrame(settle); return; }
      probe.dom.push(performance.now() - t0);
      // rAF runs just before the frame is painted; a task queued from it runs just after.
      requestAnimationFrame(() => setTimeout(() => probe.times.push(performance.now() - t0), 0));
    };
    settle();
  };
  document.addEventListener("keydown", (e) => {
    if (e.key !== "Control" && e.key !== "Shift") probe.t0 = performance.now();
  }, true);
  const consider = (img) => {
    const src = img.currentSrc || img.src;
    if (!src || probe.seen.has(src)) return;
    const done = () => { probe.seen.add(src); mark(); };
    if (img.complete && img.naturalWidth) done(); else img.addEventListener("load", done, { once: true });
  };
  new MutationObserver((records) => {
    for (const r of records) {
      if (r.type === "attributes" && r.target.tagName === "IMG") consider(r.target);
      for (const n of r.addedNodes || []) {
        if (n.tagName === "IMG") consider(n);
        else if (n.querySelectorAll) n.querySelectorAll("img").forEach(consider);
      }
    }
  }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ["src"] });
  document.querySelectorAll("img").forEach((img) => probe.seen.add(img.currentSrc || img.src));
}
"""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def digit_pngs(n: int) -> list[tuple[bytes, str]]:
    """n digit images as PNG bytes, each with its true label."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    out = []
    for i in range(n):
        buf = io.BytesIO()
        Image.fromarray((d.images[i % len(d.images)] * 15).astype(np.uint8), mode="L").save(buf, format="PNG")
        out.append((buf.getvalue(), str(d.target[i % len(d.target)])))
    return out


def predictions(truth: list[str]) -> list[str]:
    """The model's guesses: right on 4 of 5 tasks, a neighbouring digit otherwise."""
    return [t if i % 5 else str((int(t) + 1) % 10) for i, t in enumerate(truth)]


def presses(truth: list[str], guess: list[str], tool: str) -> list[list[str]]:
    """The keys a fast labeler presses per task: accept a right guess, else the right digit (then submit on LS)."""
    if tool == "s2":
        return [["Enter"] if g == t else [t] for t, g in zip(truth, guess)]
    return [(["Control+Enter"] if g == t else [t, "Control+Enter"]) for t, g in zip(truth, guess)]


def drive(page, keys: list[list[str]], settle: str, ready: str = "true") -> dict:
    """Press each task's keys as soon as the previous next example is painted; returns latencies and the rate."""
    page.evaluate(PROBE, ready)
    started = time.perf_counter()
    for i, task in enumerate(keys):
        for key in task:
            page.keyboard.press(key)
        if i == len(keys) - 1:
            break  # after the last task comes the end of the queue, not another example
        deadline = time.monotonic() + 30
        while page.evaluate("() => window.__probe.times.length") < i + 1:
            if time.monotonic() > deadline:
                raise RuntimeError(f"task {i}: the next example never appeared ({settle})")
            time.sleep(0.002)
    elapsed = time.perf_counter() - started  # to the last task's example painted and its keys pressed
    times = sorted(page.evaluate("() => window.__probe.times"))
    dom = sorted(page.evaluate("() => window.__probe.dom"))
    return {
        "p50": statistics.median(times),
        "p95": times[int(0.95 * (len(times) - 1))],
        "per_minute": (len(keys) - 1) / elapsed * 60,
        "dom_p50": statistics.median(dom),  # keydown to the next image in the page (before the frame)
        "n": len(times),
    }


def tti(page, mark: str | None) -> float:
    """Navigation start to the page's ready mark (ms)."""
    if mark:
        return page.evaluate(f"() => performance.getEntriesByName({mark!r})[0].startTime")
    return page.evaluate("() => performance.now()")


# ---- s2 ----------------------------------------------------------------------------------------------


def s2_seed(server: Server, n: int, tasks: list[tuple[bytes, str]], guess: list[str], work: Path) -> list[str]:
    """A dataset of n image examples (the tasks spread through it), a branch, a review queue of the tasks, a model."""
    images = work / "img"
    images.mkdir(parents=True, exist_ok=True)
    filler = digit_pngs(1000)
    for i, (png, _) in enumerate(filler):
        (images / f"f{i}.png").write_bytes(png)
    step = max(1, n // len(tasks))
    task_keys = [f"ex{i * step:09d}" for i in range(len(tasks))]
    for i, (png, _) in enumerate(tasks):
        (images / f"t{i}.png").write_bytes(png)
    source = work / "rows.csv"
    task_at = {k: i for i, k in enumerate(task_keys)}
    with open(source, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "label", "image"])
        for i in range(n):
            key = f"ex{i:09d}"
            if key in task_at:
                w.writerow([key, "", f"img/t{task_at[key]}.png"])
            else:
                w.writerow([key, filler[i % len(filler)][1], f"img/f{i % len(filler)}.png"])
    server.call("POST", "/datasets", json={"name": "digits", "modality": "image", "labels": LABELS})
    env = server.env
    t = time.perf_counter()
    subprocess.run([str(ROOT / ".venv" / "bin" / "s2"), "import", "digits", str(source)], env=env, check=True, capture_output=True)
    log(f"[s2] imported {n:,} examples in {time.perf_counter() - t:.0f} s")
    server.call("POST", "/datasets/digits/branches", json={"name": "work"})
    items = [{"key": k, "score": float(len(task_keys) - i)} for i, k in enumerate(task_keys)]
    server.call("POST", "/datasets/digits/queues/bench", json={"items": items})
    run = server.call("POST", "/datasets/digits/runs", json={}).json()["id"]
    _register(server, run, task_keys, guess)
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "s2"), "user", "add", "ana", "--role", "labeler", "-d", "digits"],
        env=env,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "s2"), "user", "passwd", "ana"],
        env=env,
        input=PASSWORD + "\n",
        text=True,
        check=True,
        capture_output=True,
    )
    return task_keys


def _register(server: Server, run: int, keys: list[str], guess: list[str]) -> None:
    """Finish the run as a worker would, with predictions on the tasks (in-process, on the server's database)."""
    code = (
        "import io, json, sys\n"
        "import pyarrow as pa, pyarrow.parquet as pq\n"
        "from server.blobs import default_blob_store\n"
        "from server.registry.service import register_model\n"
        "from trainer.result import TrainResult\n"
        "run, keys, guess, labels = json.loads(sys.stdin.read())\n"
        "probs = [[0.82 if l == g else 0.02 for l in labels] for g in guess]\n"
        "t = pa.table({'eval_set': ['unlabeled'] * len(keys), 'key': keys, 'label': [None] * len(keys), 'predicted': guess,"
        " 'probabilities': probs, 'loss': [float('nan')] * len(keys)})\n"
        "buf = io.BytesIO(); pq.write_table(t, buf)\n"
        "m = {'accuracy': 0.8, 'macro_f1': 0.8, 'loss': 0.5, 'per_class': {}, 'confusion_matrix': [], 'count': 0}\n"
        "r = TrainResult(weights=b'w', spec={'template': 'bench'}, spec_hash='0' * 64, metrics={'eval': m}, curves={},"
        " predictions=buf.getvalue(), device='cpu', epochs_run=1, duration_s=0.1, labels=labels)\n"
        "print(register_model(run, r, default_blob_store()))\n"
    )
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-c", code],
        input=json.dumps([run, keys, guess, LABELS]),
        env=server.env,
        cwd=ROOT,
        text=True,
        check=True,
        capture_output=True,
    )


def s2_measure(browser, server: Server, keys: list[list[str]], truth: dict[str, str]) -> dict:
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    page.goto(f"{server.base}/login")
    page.fill("#name", "ana")
    page.fill("#password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/login" not in url)
    ttis = []
    for _ in range(3):  # the first visit also fills the server's caches; report the best of three
        page.goto(f"{server.base}/d/digits/label?branch=work&queue=bench")
        page.wait_for_selector("body[data-ready='1']")
        ttis.append(tti(page, "s2-ready"))
    result = drive(page, keys, "s2")
    result["tti"] = min(ttis)
    result["tti_first"] = ttis[0]
    deadline = time.monotonic() + 60
    while page.evaluate("() => window.s2workbench.outbox.size") and time.monotonic() < deadline:
        time.sleep(0.05)
    staged = server.call("GET", "/datasets/digits/edits", params={"branch": "work", "limit": 1000}).json()["items"]
    result["saved"] = len(staged)
    result["right"] = sum(1 for e in staged if e["label"] == truth.get(e["key"]))
    context.close()
    return result


# ---- Label Studio ----------------------------------------------------------------------------------------


class LabelStudio:
    """A Label Studio server on its own SQLite data folder, with one project of the tasks and their predictions."""

    def __init__(self, work: Path):
        if not (LS_BIN / "label-studio").exists():
            log("creating bench/.venv-ls with bench/setup_label_studio.sh (~1 GB, once) ...")
            subprocess.run(["bash", str(BENCH / "setup_label_studio.sh")], check=True)
        import httpx

        self.user, self.password, self.token = "bench@example.com", uuid.uuid4().hex, uuid.uuid4().hex
        home, data = work / "ls-home", work / "ls-data"
        home.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("S2_", "LABEL_STUDIO_", "DJANGO_"))}
        env.update(
            HOME=str(home),
            LABEL_STUDIO_BASE_DATA_DIR=str(data),
            LABEL_STUDIO_USERNAME=self.user,
            LABEL_STUDIO_PASSWORD=self.password,
            LABEL_STUDIO_USER_TOKEN=self.token,
            LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN="true",
            LABEL_STUDIO_LATEST_VERSION_CHECK="false",
            LABEL_STUDIO_COLLECT_ANALYTICS="false",
            SENTRY_DSN="",
            FRONTEND_SENTRY_DSN="",
        )
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        self.log = open(work / "ls.log", "wb")
        cmd = [
            str(LS_BIN / "label-studio"),
            "start",
            "--internal-host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-browser",
            "--data-dir",
            str(data),
        ]
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        wait_until_up(f"{self.base}/health", self.proc, 300, f"Label Studio did not start on {self.base}; see {work / 'ls.log'}")
        self.client = httpx.Client(base_url=self.base, headers={"Authorization": f"Token {self.token}"}, timeout=120)

    def project(self, tasks: list[tuple[bytes, str]], guess: list[str]) -> int:
        choices = "".join(f'<Choice value="{c}" hotkey="{c}"/>' for c in LABELS)
        config = f'<View><Image name="image" value="$image"/><Choices name="label" toName="image" choice="single-radio" showInline="true">{choices}</Choices></View>'
        r = self.client.post(
            "/api/projects/", json={"title": "bench", "label_config": config, "show_collab_predictions": True, "model_version": "bench"}
        )
        r.raise_for_status()
        pid = r.json()["id"]
        body = []
        for (png, _), g in zip(tasks, guess):
            uri = "data:image/png;base64," + base64.b64encode(png).decode()
            result = [{"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": [g]}}]
            body.append({"data": {"image": uri}, "predictions": [{"model_version": "bench", "score": 0.82, "result": result}]})
        self.client.post(f"/api/projects/{pid}/import", json=body).raise_for_status()
        self.client.patch(f"/api/projects/{pid}/", json={"show_collab_predictions": True, "model_version": "bench"})
        return pid

    def measure(self, browser, pid: int, keys: list[list[str]], truth: list[str]) -> dict:
        context = browser.new_context(viewport={"width": 1280, "height": 720})
        page = context.new_page()
        page.goto(f"{self.base}/user/login/")
        page.fill("input[name=email]", self.user)
        page.fill("input[name=password]", self.password)
        page.keyboard.press("Enter")
        page.wait_for_url(lambda url: "/login" not in url)
        started = time.perf_counter()
        page.goto(f"{self.base}/projects/{pid}/data?labeling=1")
        page.wait_for_selector(".lsf-main-view img, [class*=image] img, img[src^='data:image']", state="attached", timeout=120_000)
        page.wait_for_selector(LS_READY_CSS, state="attached", timeout=60_000)
        result = drive(page, keys, "Label Studio", f"document.querySelector({LS_READY_CSS!r}) !== null")
        result["tti"] = (time.perf_counter() - started) * 1000  # navigation to the first task's image, from outside the page
        deadline = time.monotonic() + 60  # the last submit may still be on its way
        while time.monotonic() < deadline:
            done = self.client.get(f"/api/projects/{pid}/").json()
            if (done.get("num_tasks_with_annotations") or 0) >= len(keys):
                break
            time.sleep(0.2)
        tasks = sorted(self.client.get(f"/api/projects/{pid}/export", params={"exportType": "JSON"}).json(), key=lambda t: t["id"])
        chosen = [[r["value"]["choices"][0] for a in t["annotations"] for r in a["result"] if r.get("type") == "choices"] for t in tasks]
        result["saved"] = sum(1 for c in chosen if c)
        result["right"] = sum(1 for c, want in zip(chosen, truth) if c and c[-1] == want)
        page.screenshot(path=str(BENCH / ".labeling-ls.png"))
        context.close()
        return result

    def close(self) -> None:
        self.client.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


# ---- the table -------------------------------------------------------------------------------------------


def table(n: int, tasks: int, rows: dict[str, dict]) -> str:
    s2, ls = rows.get("s2"), rows.get("Label Studio")
    lines = [
        f"Labeling {tasks} digit images in headless Chromium, one key per example (s2 on a dataset of {n:,} examples)",
        "",
        "| tool | next example p50 (ms) | p95 (ms) | labels / minute | time to interactive (ms) | saved | right |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['p50']:.1f} | {r['p95']:.1f} | {r['per_minute']:.0f} | {r['tti']:.0f} | {r['saved']} | {r['right']} |")
    lines += ["", "| goal | measured | |", "|---|---:|---|"]
    lines.append(f"| s2 next example p95 < 50 ms | {s2['p95']:.1f} ms | {'PASS' if s2['p95'] < 50 else 'FAIL'} |")
    lines.append(f"| s2 time to interactive < 1 s | {s2['tti']:.0f} ms | {'PASS' if s2['tti'] < 1000 else 'FAIL'} |")
    if ls:
        ratio = s2["per_minute"] / ls["per_minute"]
        lines.append(f"| s2 labels / minute >= 3x Label Studio's | {ratio:.1f}x | {'PASS' if ratio >= 3 else 'FAIL'} |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1_000_000, help="examples in s2's dataset (the tasks spread through it)")
    p.add_argument("--tasks", type=int, default=200, help="images labeled on each tool")
    p.add_argument("--skip-ls", action="store_true", help="s2 only")
    p.add_argument("--workdir", type=Path)
    args = p.parse_args()
    if not Path(CHROMIUM).exists():
        subprocess.run(["bash", str(ROOT / "scripts" / "setup-browser.sh")], check=True)
    from playwright.sync_api import sync_playwright

    work = args.workdir or Path(tempfile.mkdtemp(prefix="s2-bench-labeling-"))
    work.mkdir(parents=True, exist_ok=True)
    tasks = digit_pngs(args.tasks)
    truth = [t for _, t in tasks]
    guess = predictions(truth)
    rows: dict[str, dict] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        (work / "s2").mkdir(parents=True, exist_ok=True)
        server = Server(work / "s2")
        try:
            task_keys = s2_seed(server, args.n, tasks, guess, work / "s2")
            rows["s2"] = s2_measure(browser, server, presses(truth, guess, "s2"), dict(zip(task_keys, truth)))
            log(f"[s2] {rows['s2']}")
        finally:
            server.close()
        if not args.skip_ls:
            ls = LabelStudio(work)
            try:
                pid = ls.project(tasks, guess)
                rows["Label Studio"] = ls.measure(browser, pid, presses(truth, guess, "ls"), truth)
                log(f"[ls] {rows['Label Studio']}")
            finally:
                ls.close()
        browser.close()
    print(table(args.n, args.tasks, rows))
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
