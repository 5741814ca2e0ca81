"""Real headless Chromium (Debian's, driven by Playwright) against a real `s2 serve` on PostgreSQL."""

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.api.conftest import Api
from tests.api.factories import register_model
from tests.factories import write_image_csv

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SHOTS = Path(os.environ.get("S2_SCREENSHOTS", Path(__file__).resolve().parents[3] / ".screenshots"))
PASSWORD = "correct horse battery"
LABELS = [str(d) for d in range(10)]
N = 30


@pytest.fixture(scope="session")
def browser():
    """One Chromium for the session; each test opens its own contexts (cookie jars)."""
    if not CHROMIUM.exists():
        pytest.exit(f"{CHROMIUM} is missing: run scripts/setup-browser.sh (scripts/test.sh does)", returncode=3)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


class Site:
    """The browser side of a running server: contexts that record every request, sign-in, screenshots."""

    def __init__(self, api: Api, browser, request):
        self.api, self.browser, self.test = api, browser, request.node.name
        self.requests: list[str] = []
        self.contexts = []
        self.errors: list[str] = []

    def context(self):
        ctx = self.browser.new_context(viewport={"width": 1280, "height": 720}, base_url=self.api.url)
        ctx.on("request", lambda r: self.requests.append(r.url))
        self.contexts.append(ctx)
        return ctx

    def page(self):
        page = self.context().new_page()
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        # A failed fetch is logged as "Failed to load resource" (a 409 the page handles, say): not a script error.
        page.on(
            "console",
            lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" and "Failed to load resource" not in m.text else None,
        )
        return page

    def sign_in(self, page, name: str, at: str = "/", password: str = PASSWORD):
        """Open `at`, get sent to /login, sign in by keyboard alone, and land back on `at`."""
        page.goto(at)
        page.wait_for_url("**/login?**")
        page.locator("#name").focus()
        page.keyboard.type(name)
        page.keyboard.press("Tab")
        page.keyboard.type(password)
        page.keyboard.press("Enter")
        page.wait_for_url(lambda url: "/login" not in url)
        page.wait_for_load_state()
        return page

    def shot(self, page, name: str) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{self.test}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    def off_loopback(self) -> list[str]:
        return [
            u
            for u in self.requests
            if urlsplit(u).scheme not in ("data", "blob") and urlsplit(u).hostname not in ("127.0.0.1", "localhost")
        ]

    def close(self):
        for ctx in self.contexts:
            ctx.close()


@pytest.fixture
def site(api, browser, request):
    s = Site(api, browser, request)
    yield s
    s.close()
    assert s.off_loopback() == [], "a page sent a request off this machine"


def until(page, expression: str, timeout: float = 15) -> None:
    """Wait until a JS expression is true in the page (polled with evaluate: the pages' CSP forbids the eval
    that Playwright's wait_for_function uses)."""
    import time

    deadline = time.monotonic() + timeout
    while not page.evaluate(f"() => Boolean({expression})"):
        assert time.monotonic() < deadline, f"still false after {timeout} s: {expression}"
        time.sleep(0.03)


def add_labeler(api: Api, cli, name: str, datasets: tuple[str, ...]) -> str:
    """A labeler with PASSWORD assigned to datasets; returns their token."""
    token = api.add_user(name, "labeler", datasets)
    proc = cli.run("user", "passwd", name, input=PASSWORD + "\n")
    assert proc.returncode == 0, proc.stderr
    return token


@pytest.fixture
def digits(api, cli, blobs, tmp_path: Path) -> dict:
    """An image dataset of N unlabeled examples (keys u000...), ten labeled ones (l000...) and a branch to label on;
    a model guesses each unlabeled one."""
    cli.ok("dataset", "create", "digits", "--modality", "image", "--labels", ",".join(LABELS))
    keys = [f"u{i:03d}" for i in range(N)]
    cli.ok("import", "digits", write_image_csv(tmp_path / "src", {**{k: "" for k in keys}, **{f"l{d:03d}": str(d) for d in range(10)}}))
    cli.ok("branch", "digits", "work")
    with api.admin as c:
        r = c.post("/datasets/digits/runs", json={})
        assert r.status_code in (201, 202), r.text
        run = r.json()["id"]
    guess = {k: str((i * 7) % 10) for i, k in enumerate(keys)}  # the model's guess per key
    probabilities = {k: [0.9 if d == guess[k] else 0.1 / 9 for d in LABELS] for k in keys}
    register_model(blobs, run, LABELS, guess, guess, probabilities)
    return {"keys": keys, "guess": guess}
