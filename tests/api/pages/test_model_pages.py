"""The model pages in real Chromium: the models list, the compare page (metrics, per class, confusion matrices
whose cells open their examples, the examples each version fixed or broke) and promotion from the page."""

from tests.api.factories import imported, register_model
from tests.api.pages.conftest import PASSWORD, add_labeler, until
from tests.api.pages.test_access import axe_problems
from tests.api.test_loop import digits_zip, wait_succeeded

TINY = {"epochs": 2, "image_size": 8, "image_channels": 1, "batch_size": 16}


def digits_dataset(c, tmp_path, n: int) -> dict[str, str]:
    """An image dataset of n of scikit-learn's digits on main; its labels by key."""
    assert c.post("/datasets", json={"name": "digits", "modality": "image", "labels": [str(d) for d in range(10)]}).status_code == 201
    files = [("files", ("digits.zip", digits_zip(tmp_path, n), "application/zip"))]
    imported(c, c.post("/datasets/digits/imports", files=files))
    items = c.get("/datasets/digits/examples", params={"limit": 1000}).json()["items"]
    return {e["key"]: e["label"] for e in items}


def relabel(c, branch: str, labels: dict[str, str], message: str) -> str:
    """Relabel keys on a branch (made from main when missing) and commit; returns the commit id."""
    c.post("/datasets/digits/branches", json={"name": branch})
    r = c.post("/datasets/digits/edits", params={"branch": branch}, json={"edits": [{"key": k, "label": v} for k, v in labels.items()]})
    assert r.status_code == 200, r.text
    r = c.post("/datasets/digits/commits", json={"message": message, "branch": branch})
    assert r.status_code == 201, r.text
    return r.json()["commit"]["id"]


def add_engineer(api, cli, name: str) -> None:
    api.add_user(name, "engineer")
    assert cli.run("user", "passwd", name, input=PASSWORD + "\n").returncode == 0


def flips_on_page(page) -> dict[str, tuple[str, str]]:
    """The flipped examples the compare page lists: key -> (fixed or broken, why)."""
    rows = page.locator("table.flips tbody tr")
    return {
        rows.nth(i).get_attribute("data-key"): (rows.nth(i).get_attribute("data-change"), rows.nth(i).locator("td.cause").inner_text())
        for i in range(rows.count())
    }


def images_loaded(page, selector: str) -> bool:
    return page.evaluate(f"() => [...document.querySelectorAll('{selector}')].every(i => i.complete && i.naturalWidth > 0)")


def test_models_compare_cells_flips_and_promotion_in_the_browser(site, api, cli, blobs, tmp_path):
    """Two registered versions: the list, the compare page as a labeler (no promote), a confusion cell's examples,
    the flips with the own-label marker, unknown models, and an engineer's promotion and the gate's refusal."""
    with api.admin as c:
        truth = digits_dataset(c, tmp_path, 30)
        by_label = {d: sorted(k for k, v in truth.items() if v == d) for d in set(truth.values())}
        own, rest, broken, wrong = by_label["5"][0], by_label["7"][0], by_label["3"][0], by_label["3"][1]
        first = c.post("/datasets/digits/runs", json={}).json()
        commit_b = relabel(c, "work", {own: "6"}, "this five is a six")
        second = c.post("/datasets/digits/runs", json={"rev": "work"}).json()
        # v1: wrong on `own` (says 6 while labeled 5), `rest` and `wrong`; v2: wrong on `broken` and `wrong`.
        said_a = truth | {own: "6", rest: "1", wrong: "8"}
        truth_b = truth | {own: "6"}
        said_b = truth_b | {broken: "8", wrong: "8"}
        assert register_model(blobs, first["id"], [str(d) for d in range(10)], truth, said_a) == "digits@1"
        assert register_model(blobs, second["id"], [str(d) for d in range(10)], truth_b, said_b) == "digits@2"
    add_labeler(api, cli, "ana", ("digits",))
    add_engineer(api, cli, "eve")

    # A labeler: the list, then the compare page without a promote form.
    page = site.sign_in(site.page(), "ana", "/d/digits/models")
    rows = page.locator("table.models tbody tr")
    assert (
        rows.count() == 2
        and rows.nth(0).locator("th").inner_text().startswith("v2")
        and rows.nth(1).locator("th").inner_text().startswith("v1")
    )
    assert "0.933" in rows.nth(0).inner_text() and "0.900" in rows.nth(1).inner_text() and "+0.033" in rows.nth(0).inner_text()
    assert (
        rows.nth(0).get_by_role("link", name="data since v1").get_attribute("href")
        == f"/d/digits/diff/{first['dataset_commit']}...{commit_b}"
    )
    assert axe_problems(page) == []
    site.shot(page, "models")
    page.get_by_role("button", name="Compare").click()  # the form's defaults: v1 to v2
    page.wait_for_url("**/d/digits/compare/1...2")
    assert page.locator("#promote-form").count() == 0
    metrics = {n: page.locator(f"tr[data-metric='{n}']").inner_text() for n in ("accuracy", "macro_f1", "loss")}
    assert "0.900" in metrics["accuracy"] and "0.933" in metrics["accuracy"] and "+0.033" in metrics["accuracy"]
    assert "better" in metrics["accuracy"] and "better" in metrics["loss"] and "-0.033" in metrics["loss"]
    assert page.locator("table.per-class tbody tr").count() == 10
    captions = page.locator("table.matrix caption").all_inner_texts()
    assert [t.split(" (")[0] for t in captions] == ["Model A: digits@1", "Model B: digits@2", "Difference: digits@2 minus digits@1"]
    assert flips_on_page(page) == {
        own: ("fixed", "its own label changed"),
        rest: ("fixed", "the rest of the data"),
        broken: ("broken", "the rest of the data"),
    }
    history = page.locator(f"tr[data-key='{own}'] ol.history").inner_text()
    assert commit_b[:10] in history and "this five is a six" in history and "6" in history
    until(page, "[...document.querySelectorAll('table.flips img')].every(i => i.complete)")
    assert images_loaded(page, "table.flips img") and page.locator("table.flips img").count() == 3
    diff = page.get_by_role("link", name="The data change between them").get_attribute("href")
    assert diff == f"/d/digits/diff/{first['dataset_commit']}...{commit_b}"
    assert axe_problems(page) == []
    site.shot(page, "compare-labeler")
    page.emulate_media(color_scheme="dark")
    assert axe_problems(page) == []
    site.shot(page, "compare-dark")
    page.emulate_media(color_scheme="light")

    # Model B's cell (label 3, predicted 8) opens exactly its two examples.
    page.locator("table.matrix").nth(1).locator("tbody tr").nth(3).locator("td").nth(8).get_by_role("link").click()
    page.wait_for_url("**/d/digits/models/2/examples?**")
    assert sorted(page.locator(".cell-examples li").evaluate_all("(els) => els.map(e => e.dataset.key)")) == sorted([broken, wrong])
    assert "2 examples in this cell" in page.locator("main").inner_text()
    assert page.get_by_role("link", name="Back to the comparison 1...2").get_attribute("href") == "/d/digits/compare/1...2?eval_set=eval"
    until(page, "[...document.querySelectorAll('.cell-examples img')].every(i => i.complete)")
    assert images_loaded(page, ".cell-examples img")
    assert axe_problems(page) == []
    site.shot(page, "cell-examples")
    page.locator(".cell-examples li a").first.click()  # on to the example's own page
    page.wait_for_url(f"**/d/digits/examples/{min(broken, wrong)}?rev=**")

    # Unknown models and malformed pairs: a 404 page that names what was not found.
    for url, said in [
        ("/d/digits/compare/1...9", "no model digits@9"),
        ("/d/digits/compare/1..2", "name two models as A...B"),
        ("/d/digits/compare/other@1...2", "not a model of dataset 'digits'"),
        ("/d/digits/models/7/examples?label=3&predicted=8", "no model digits@7"),
    ]:
        r = page.goto(url)
        assert r.status == 404 and said in page.locator(".error").inner_text(), url
    assert axe_problems(page) == []
    site.shot(page, "unknown-model")

    # An engineer promotes B, then A: the gate refuses A (worse than production) and says so on the page.
    page = site.sign_in(site.page(), "eve", "/d/digits/compare/1...2")
    until(page, "document.body.dataset.ready === '1'")
    page.get_by_role("button", name="Promote").click()
    page.locator("#promote-result .promoted").wait_for()
    assert page.locator("#promote-result").inner_text().startswith("digits@2 is now in production")
    assert page.locator("[data-stage-for='digits@2']").inner_text() == "production"
    page.select_option("#promote-model", "digits@1")
    page.get_by_role("button", name="Promote", exact=True).click()
    page.locator("#promote-result .gate").wait_for()
    refusal = page.locator("#promote-result").inner_text()
    assert "worse than production digits@2" in refusal and "0.9333" in refusal and "0.9000" in refusal and "-0.0333" in refusal
    assert page.get_by_role("button", name="Promote digits@1 anyway").is_visible()
    assert axe_problems(page) == []
    site.shot(page, "compare-gate-refused")
    with api.admin as c:
        assert c.get("/models/digits@production").json()["version"] == 2
    page.reload()
    assert page.locator("[data-stage-for='digits@2']").inner_text() == "production"
    assert site.errors == []


def test_two_really_trained_models_compare_in_the_browser(site, api, cli, workers, tmp_path):
    """A worker trains two versions (the second after eval examples were relabeled); the page lists the same flips
    as the API, marks the relabeled ones, and a confusion cell opens that cell's examples."""
    worker = workers()
    add_engineer(api, cli, "eve")
    with api.admin as c:
        digits_dataset(c, tmp_path, 60)
        first = c.post("/datasets/digits/runs", json={"spec": TINY}).json()
        assert wait_succeeded(c, first["id"], timeout=120)["model"] == "digits@1"
        scored = c.get("/models/digits@1/examples", params={"limit": 1000}).json()["items"]
        # Relabel three eval examples so each flips if v2 predicts as v1 did: wrong ones to the prediction, right ones away.
        moved = {e["key"]: e["predicted"] if e["predicted"] != e["label"] else str((int(e["label"]) + 1) % 10) for e in scored[:3]}
        relabel(c, "fix", moved, "fix three eval labels")
        second = c.post("/datasets/digits/runs", json={"rev": "fix", "spec": TINY}).json()
        assert wait_succeeded(c, second["id"], timeout=120)["model"] == "digits@2"
        report = c.get("/compare", params={"a": "digits@1", "b": "digits@2", "limit": 50}).json()
    flips = {f["key"]: (f["change"], "its own label changed" if f["label_history"] else "the rest of the data") for f in report["flips"]}
    assert flips, "no example flipped between the two trained models"
    assert all(flips[k][1] == "its own label changed" for k in moved if k in flips)

    page = site.sign_in(site.page(), "eve", "/d/digits/compare/1...2")
    assert flips_on_page(page) == flips
    accuracy = report["metrics"]["accuracy"]
    assert f"{accuracy['a']:.3f}" in page.locator("tr[data-metric='accuracy']").inner_text()
    site.shot(page, "compare-trained")
    link = page.locator("table.matrix").nth(1).locator("td a").first
    label, predicted = (link.get_attribute("href").split(f"{k}=")[1].split("&")[0] for k in ("label", "predicted"))
    link.click()
    page.wait_for_url("**/d/digits/models/2/examples?**")
    with api.admin as c:
        cell = c.get("/models/digits@2/examples", params={"label": label, "predicted": predicted, "limit": 60}).json()["items"]
    assert page.locator(".cell-examples li").evaluate_all("(els) => els.map(e => e.dataset.key)") == [e["key"] for e in cell]
    site.shot(page, "cell-trained")
    assert site.errors == [] and "Traceback" not in worker.output()


def test_the_models_list_shows_each_models_data_unit_tests_and_links_failing_examples(site, api, cli, blobs, tmp_path):
    from tests.api.test_engine_api import analysed_model, seed

    seed(api, cli, blobs, tmp_path)  # notes@1 predicts 'a' for every note
    add_engineer(api, cli, "eve")
    with api.admin as c:
        assert c.post("/datasets/notes/slices", json={"name": "bs", "keys": ["n1", "n4"], "minimum": 0.5}).status_code == 200
    analysed_model(api, blobs, lambda key, label: label)  # notes@2 gets them right
    page = site.page()
    site.sign_in(page, "eve", "/d/notes/models")
    rows = page.locator("table.models tbody tr")
    assert rows.nth(0).locator("td.slices").inner_text().startswith("✓ bs 1.000")
    failing = rows.nth(1).locator("td.slices .fail")
    assert failing.inner_text().startswith("✗ bs 0.000: n1, n4")
    assert failing.locator("a").first.get_attribute("href").startswith("/d/notes/examples/n1?rev=")
    site.shot(page, "models-slices")
    assert site.errors == []
