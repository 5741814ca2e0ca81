"""Every page in real Chromium: axe-core (pinned in server/web/vendor.json) finds no serious or critical problem,
every action is reachable by keyboard, and a screenshot of each page is saved to look at."""

import json
from pathlib import Path

from tests.api.pages.conftest import add_labeler, until

MANIFEST = json.loads((Path(__file__).resolve().parents[3] / "server" / "web" / "vendor.json").read_text())["packages"]
AXE = f"/assets/vendor/axe-core-{MANIFEST['axe-core']['version']}.js"


def axe_problems(page) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(url=AXE)  # same-origin: the pages' CSP allows it
    found = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in found
        if v["impact"] in ("serious", "critical")
    ]


def test_every_page_passes_axe_and_works_from_the_keyboard(site, api, cli, digits):
    add_labeler(api, cli, "ana", ("digits",))
    page = site.page()
    page.goto("/login")
    assert axe_problems(page) == []
    site.shot(page, "login")
    # A wrong password: a message on the page, the name kept.
    page.fill("#name", "ana")
    page.fill("#password", "not the password")
    page.keyboard.press("Enter")
    page.locator("#login-message").wait_for()
    assert "wrong user name or password" in page.locator("#login-message").inner_text()
    assert page.input_value("#name") == "ana"
    assert axe_problems(page) == []
    site.shot(page, "login-refused")

    site.sign_in(page, "ana", "/")
    assert axe_problems(page) == []
    site.shot(page, "home")
    # From the datasets page to the workbench by keyboard alone.
    page.keyboard.press("Tab")  # the skip link first
    assert page.evaluate("() => document.activeElement.textContent") == "Skip to content"
    page.locator("a.card").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/d/digits")
    assert axe_problems(page) == []
    site.shot(page, "dataset")
    page.get_by_role("link", name="Label unlabeled").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("body[data-ready='1']")
    assert axe_problems(page) == []
    site.shot(page, "workbench")
    page.keyboard.press("?")
    page.locator("#help-dialog[open]").wait_for()
    assert "accept the pre-selected label" in page.locator("#keys-list").inner_text()
    assert axe_problems(page) == []
    site.shot(page, "keys")
    page.keyboard.press("Escape")
    page.keyboard.press("Shift+C")
    until(page, "document.querySelector('#commit-summary').textContent.includes('staged edit')")
    assert axe_problems(page) == []
    page.keyboard.press("Escape")
    page.goto("/d/digits/examples/u001?rev=work")
    assert axe_problems(page) == []
    site.shot(page, "example")
    page.goto("/d/nothing-here")
    assert "not assigned to dataset" in page.locator(".error").inner_text()  # a labeler learns nothing of what exists
    assert axe_problems(page) == []
    site.shot(page, "error")
    assert site.errors == []
