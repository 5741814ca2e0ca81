"""The diff page in real Chromium: counts and the relabel matrix (loaded after the first page of examples paints),
a matrix cell opens exactly its examples, kinds and pages, text shown as text, and the 404/403 pages."""

import csv
from pathlib import Path

from tests.api.pages.conftest import add_labeler, until
from tests.api.pages.test_access import axe_problems
from tests.api.test_diff_summary import REMOVED, build_diff

CHANGED = sorted(["n00", "n01", "n02", *REMOVED, "k03", "k13", "k23", "k33", "k01", "k11", "k36", "k19", "k09"])


def tile_keys(page) -> list[str]:
    return page.locator(".diff-tile").evaluate_all("tiles => tiles.map(t => t.dataset.key)")


def matrix(page) -> dict[tuple[str, str], str]:
    """The relabel matrix as {(row header, column header): cell text} for its non-zero cells."""
    cells = page.evaluate(
        """() => {
        const table = document.querySelector('table.diff-matrix');
        const cols = [...table.tHead.rows[0].cells].map(c => c.textContent.trim());
        return [...table.tBodies[0].rows].flatMap(r => [...r.cells].slice(1).map((c, i) => [r.cells[0].textContent.trim(), cols[i + 1], c.textContent.trim()]));
    }"""
    )
    return {(f, t): n for f, t, n in cells if t != "total" and n != "0"}


def test_diff_page_counts_matrix_filters_and_pages(site, api, cli, tmp_path):
    build_diff(api, cli, tmp_path)
    add_labeler(api, cli, "ana", ("pics",))
    add_labeler(api, cli, "olga", ())
    page = site.page()
    site.sign_in(page, "ana", "/d/pics/diff/main...work")
    # The examples are in the page itself; the counts arrive after it paints.
    assert tile_keys(page) == CHANGED
    page.locator("table.diff-matrix").wait_for()
    counts = {k: page.locator(f".diff-count .n[data-kind={k}]").inner_text() for k in ("added", "removed", "relabeled", "modified")}
    assert counts == {"added": "3", "removed": "2", "relabeled": "8", "modified": "2"}
    assert matrix(page) == {("1", "7"): "2", ("3", "8"): "4", ("9", "8"): "1", ("unlabeled", "5"): "1"}
    assert page.locator("table.diff-matrix caption").count() == 1 and page.locator("table.diff-matrix tbody th[scope=row]").count() == 4
    until(page, "[...document.querySelectorAll('.diff-tile img')].slice(0, 8).every(i => i.complete && i.naturalWidth > 0)")
    k19 = page.locator(".diff-tile[data-key=k19] .diff-change").inner_text()
    assert "9" in k19 and "8" in k19 and "input changed" in k19
    assert axe_problems(page) == []
    site.shot(page, "diff")

    # A matrix cell opens exactly its examples; unlabeled is a class like the others.
    page.get_by_role("link", name="4 relabeled from 3 to 8").click()
    page.wait_for_url("**from=3&to=8**")
    assert tile_keys(page) == ["k03", "k13", "k23", "k33"]
    assert "Relabeled from 3 to 8" in page.locator(".diff-filter").inner_text()
    page.locator("table.diff-matrix").wait_for()
    assert axe_problems(page) == []
    site.shot(page, "diff-pair")
    page.get_by_role("link", name="1 relabeled from unlabeled to 5").click()
    page.wait_for_url("**to=5**")
    assert tile_keys(page) == ["k36"]

    # Kinds; a removed example links to its history where it still exists (A), the others at B.
    page.get_by_role("navigation", name="Kind of change").get_by_role("link", name="removed").click()
    page.wait_for_url("**kind=removed**")
    assert tile_keys(page) == list(REMOVED)
    assert page.locator(".diff-tile[data-key=k05] a").get_attribute("href") == "/d/pics/examples/k05?rev=main"
    page.goto("/d/pics/diff/main...work?kind=modified")
    assert tile_keys(page) == ["k09", "k19"]
    page.locator(".diff-tile[data-key=k19] a").click()
    page.wait_for_url("**/d/pics/examples/k19?rev=work")
    assert page.locator("h1").inner_text() == "Example k19 at work"

    # Pages of five: every changed key once, in key order, then no next page.
    page.goto("/d/pics/diff/main...work?limit=5")
    seen = tile_keys(page)
    while page.get_by_role("link", name="Next page →").count():
        page.get_by_role("link", name="Next page →").click()
        page.wait_for_load_state()
        seen += tile_keys(page)
        assert page.get_by_role("link", name="← First page").count() == 1
    assert seen == CHANGED
    site.shot(page, "diff-last-page")
    page.goto("/d/pics/diff/main...work?limit=3&from=3&to=8")
    assert tile_keys(page) == ["k03", "k13", "k23"]
    page.get_by_role("link", name="Next page →").click()
    page.wait_for_url("**cursor=**")
    assert tile_keys(page) == ["k33"] and page.get_by_role("link", name="Next page →").count() == 0

    # Bad addresses: a page that names what was not found.
    answer = page.goto("/d/pics/diff/main...nope")
    assert answer.status == 404 and "unknown revision 'nope'" in page.locator(".error").inner_text()
    assert axe_problems(page) == []
    site.shot(page, "diff-unknown")
    assert page.goto("/d/pics/diff/work~9...main").status == 404
    assert "past the first commit" in page.locator(".error").inner_text()
    assert page.goto("/d/pics/diff/main").status == 404 and "A...B" in page.locator(".error").inner_text()
    assert page.goto("/d/pics/diff/main...work?kind=renamed").status == 422

    other = site.page()
    site.sign_in(other, "olga", "/d/pics/diff/main...work")
    assert "not assigned to dataset 'pics'" in other.locator(".error").inner_text()
    assert other.locator(".diff-tile").count() == 0
    assert other.goto("/d/pics/diff/main...work?part=summary").status == 403
    assert site.errors == []


def write_rows(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


HOSTILE = "<img src=x onerror=alert(1)>"


def test_text_and_tabular_diffs_show_their_inputs_as_text(site, api, cli, tmp_path):
    cli.ok("dataset", "create", "notes", "--modality", "text", "--labels", "spam,ham")
    cli.ok("import", "notes", write_rows(tmp_path / "a.csv", ["key", "label", "text"], [["t1", "spam", "buy now"], ["t2", "ham", "hello"]]))
    cli.ok("branch", "notes", "work")
    long = "a long message " * 40
    rows = [["t3", "spam", HOSTILE], ["t4", "ham", long]]
    cli.ok("import", "notes", write_rows(tmp_path / "b.csv", ["key", "label", "text"], rows), "--branch", "work")
    cli.ok("label", "notes", "t1", "ham", "--branch", "work")
    cli.ok("commit", "notes", "-m", "spam is ham", "--branch", "work")
    cli.ok("dataset", "create", "rows", "--modality", "tabular", "--labels", "low,high")
    header = ["key", "label", "height", "weight", "age", "city", "zip"]
    cli.ok("import", "rows", write_rows(tmp_path / "c.csv", header, [["r1", "low", "1.5", "60", "30", HOSTILE, "7"]]))
    cli.ok("branch", "rows", "work")
    cli.ok("label", "rows", "r1", "high", "--branch", "work")
    cli.ok("commit", "rows", "-m", "taller", "--branch", "work")
    add_labeler(api, cli, "ana", ("notes", "rows"))

    page = site.page()
    alerts: list[str] = []
    page.on("dialog", lambda d: (alerts.append(d.message), d.dismiss()))
    site.sign_in(page, "ana", "/d/notes/diff/main...work")
    assert tile_keys(page) == ["t1", "t3", "t4"]
    assert page.locator(".diff-tile[data-key=t3] .diff-snippet").inner_text() == HOSTILE
    assert page.locator(".diff-tile img").count() == 0
    snippet = page.locator(".diff-tile[data-key=t4] .diff-snippet").inner_text()
    assert snippet.endswith("…") and len(snippet) == 241
    assert page.locator(".diff-tile[data-key=t1] .diff-snippet").inner_text() == "buy now"
    page.locator("table.diff-matrix").wait_for()
    assert matrix(page) == {("spam", "ham"): "1"}
    assert axe_problems(page) == []
    site.shot(page, "text-diff")

    page.goto("/d/rows/diff/main...work")
    cells = page.locator(".diff-tile[data-key=r1] .diff-features").evaluate("dl => [...dl.children].map(c => c.textContent)")
    assert cells[:2] == ["age", "30"] and len(cells) == 8  # four features (stored with sorted names)
    assert HOSTILE in cells
    page.locator("table.diff-matrix").wait_for()
    assert axe_problems(page) == []
    site.shot(page, "tabular-diff")
    assert alerts == [] and site.errors == []
