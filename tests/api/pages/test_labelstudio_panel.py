"""The dataset page's Label Studio panel in real Chromium: a linked dataset shows its project, branch, webhook,
last push and pull and its tasks by state; an unlinked one shows engineers how to link it, labelers nothing.

The link and its tasks are written straight to the tables: this is about the page (the bridge itself is tested
against a real Label Studio in tests/labelstudio)."""

from datetime import UTC, datetime

from tests.api.pages.conftest import PASSWORD, add_labeler
from tests.api.pages.test_access import axe_problems
from tests.factories import make_dataset, text_rows, upsert

STATES = {"pushed": 4, "sending": 1, "applied": 3, "agreed": 2, "conflict": 2, "invalid": 1, "disputed": 1}


def linked_dataset(blobs, name: str) -> str:
    """A text dataset of 14 examples on main and a branch `work`, linked to a Label Studio project by hand; the import commit."""
    from labeling.labelstudio.models import LabelStudioLink, LabelStudioTask
    from server.datasets.datasets import get_dataset
    from server.datasets.refs import create_branch
    from server.db import run_in_transaction
    from server.engine.consensus import LABEL_STUDIO, dispute

    make_dataset(name, labels=("pos", "neg"))
    keys = [f"k{i:03d}" for i in range(sum(STATES.values()))]
    commit = upsert(blobs, name, text_rows(blobs, {k: (f"text {k}", None) for k in keys}))
    run_in_transaction(lambda db: create_branch(db, dataset=name, name="work", from_rev=None))
    states = [s for s, n in STATES.items() for _ in range(n)]

    def link(db) -> None:
        ds = get_dataset(db, name)
        db.add(
            LabelStudioLink(
                dataset_id=ds.id,
                url="http://ls.example.test:8080",
                token="secret-token-never-shown",
                project=7,
                title="Reviews <b>sentiment</b> & more",  # dataset text is data: shown, never markup
                branch="work",
                webhook_id=None,
                created_by="eve",
                created_at=datetime(2024, 5, 1, 9, 0, tzinfo=UTC),
                last_push_at=datetime(2024, 5, 2, 10, 30, tzinfo=UTC),
                last_pull_at=datetime(2024, 5, 3, 14, 5, tzinfo=UTC),
                last_pull={
                    "project": 7,
                    "commit": commit.id,
                    "tasks": 8,
                    "applied": 3,
                    "agreed": 2,
                    "unchanged": 0,
                    "already_labeled": 0,
                    "skipped": 0,
                    "not_from_s2": 0,
                    "conflicts": 2,
                    "disputed": 1,
                    "invalid": 1,
                },
            )
        )
        for i, (key, state) in enumerate(zip(keys, states, strict=True)):
            db.add(LabelStudioTask(dataset_id=ds.id, key=key, task=None if state == "sending" else 100 + i, version="v", state=state))
            if state == "disputed":
                dispute(db, ds, key, LABEL_STUDIO, {"ann@example.com": "pos", "bob@example.com": "neg"}, origin="Label Studio project 7")

    run_in_transaction(link)
    return commit.id


def shot(site, page, name: str) -> None:
    """A screenshot once the label counts (loaded after the page) are in."""
    page.locator("#label-distribution table").wait_for()
    site.shot(page, name)


def sign_up_engineer(api, cli, name: str) -> None:
    api.add_user(name, "engineer")
    assert cli.run("user", "passwd", name, input=PASSWORD + "\n").returncode == 0


def test_a_linked_dataset_shows_its_label_studio_project_and_tasks(site, api, cli, blobs):
    commit = linked_dataset(blobs, "reviews")
    sign_up_engineer(api, cli, "eve")
    page = site.sign_in(site.page(), "eve", "/d/reviews")
    panel = page.locator("section[aria-labelledby='labelstudio-title']")
    text = panel.inner_text()
    project = panel.get_by_role("link", name="Reviews <b>sentiment</b> & more")
    assert project.get_attribute("href") == "http://ls.example.test:8080/projects/7/data"
    assert project.get_attribute("target") == "_blank"
    assert panel.locator("b").count() == 0  # the title's markup is text
    assert "#7" in text
    assert panel.get_by_role("link", name="work", exact=True).get_attribute("href") == "/d/reviews/commits?branch=work"
    assert "arrive when pulled" in text and "no webhook" in text
    assert "s2 labelstudio pull reviews" in text
    assert "2024-05-02 10:30 UTC" in text and "2024-05-03 14:05 UTC" in text
    assert panel.locator("a.mono").inner_text() == commit[:10]
    rows = {r.locator("td").nth(0).inner_text(): r.locator("td").nth(1).inner_text() for r in panel.locator("tbody tr").all()}
    assert rows == {"sending": "1", "awaiting": "4", "applied": "3", "agreed": "2", "conflicts": "2", "invalid": "1", "disputed": "1"}
    assert panel.locator(".delta.down").all_inner_texts() == ["conflicts", "2", "invalid", "1"]  # they stand out
    assert "13 example(s) sent as tasks" in text  # the one still sending is not a task yet
    assert "s2 labelstudio tasks reviews --state conflict (or --state invalid)" in text
    assert "secret-token" not in page.content()
    assert axe_problems(page) == []
    shot(site, page, "linked-engineer")

    # The disputed count opens the workbench's disputed queue on the linked branch.
    disputed = panel.get_by_role("link", name="disputed")
    assert disputed.get_attribute("href") == "/d/reviews/label?queue=disputed&branch=work"
    disputed.click()
    page.wait_for_selector("body[data-ready='1']")
    assert "queue=disputed" in page.url
    assert site.errors == []


def test_with_the_webhook_on_a_labeler_sees_annotations_arrive_and_no_commands(site, api, cli, blobs):
    linked_dataset(blobs, "reviews")

    def webhook(db) -> None:
        from labeling.labelstudio.models import LabelStudioLink
        from server.datasets.datasets import get_dataset

        db.get(LabelStudioLink, get_dataset(db, "reviews").id).webhook_id = 3

    from server.db import run_in_transaction

    run_in_transaction(webhook)
    add_labeler(api, cli, "ana", ("reviews",))
    page = site.sign_in(site.page(), "ana", "/d/reviews")
    panel = page.locator("section[aria-labelledby='labelstudio-title']")
    text = panel.inner_text()
    assert "arrive within seconds" in text and "webhook on" in text
    assert "s2 labelstudio" not in text  # commands are an engineer's
    assert "left for an engineer to settle" in text
    shot(site, page, "linked-labeler")
    assert site.errors == []


def test_an_unlinked_dataset_shows_engineers_how_to_link_it_and_labelers_nothing(site, api, cli, blobs):
    make_dataset("plain", labels=("pos", "neg"))
    upsert(blobs, "plain", text_rows(blobs, {"k1": ("one", "pos"), "k2": ("two", None)}))
    sign_up_engineer(api, cli, "eve")
    add_labeler(api, cli, "ana", ("plain",))

    page = site.sign_in(site.page(), "eve", "/d/plain")
    panel = page.locator("section.panel", has=page.get_by_role("heading", name="Label Studio"))
    assert "s2 labelstudio connect plain --url URL --token T" in panel.inner_text()
    shot(site, page, "unlinked-engineer")

    page = site.sign_in(site.page(), "ana", "/d/plain")
    page.get_by_role("heading", name="Branches").wait_for()
    assert page.get_by_role("heading", name="Label Studio").count() == 0
    assert "labelstudio" not in page.content()
    shot(site, page, "unlinked-labeler")
    assert site.errors == []
