"""Paging on a PostgreSQL database whose default collation is not byte order (ICU en-US, where "a" < "B" < "b"):
every list gives every item exactly once, and keys keep byte order everywhere."""

import uuid

import pytest
from sqlalchemy import create_engine, text

from server.db import get_engine, upgrade_to_head
from tests.api.factories import imported
from tests.api.test_roles import csv_files
from tests.conftest import PG_HOST

NAMES = ["B", "a", "z_z", "A", "b-2", "Zeta", "alpha", "b", "Alpha", "0day", "b.x", "B-1"]
KEYS = ["B", "a", "_z", "A", "b/2", "Zeta", "alpha", "b", "Alpha", "0day", "É", "e"]


@pytest.fixture
def db_url():
    """A private database created with ICU's en-US collation (the server's own default would be C.UTF-8 here)."""
    name = f"s2t_icu_{uuid.uuid4().hex[:10]}"
    admin = create_engine(f"{PG_HOST}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE \"{name}\" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"))
    url = f"{PG_HOST}/{name}"
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT 'a' < 'B' COLLATE \"default\"")).scalar()  # not byte order indeed
    upgrade_to_head(engine)
    engine.dispose()
    yield url
    get_engine(url).dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def all_pages(c, path: str, field: str, limit: int = 2, **params) -> list[str]:
    seen, cursor = [], None
    while True:
        page = c.get(path, params={**params, "limit": limit, **({"cursor": cursor} if cursor else {})}).json()
        seen += [item[field] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            return seen


def test_every_list_pages_completely_under_a_linguistic_collation(api):
    with api.admin as c:
        for name in NAMES:
            assert c.post("/datasets", json={"name": name, "modality": "text", "labels": ["x", "y"]}).status_code == 201
        datasets = all_pages(c, "/datasets", "name")
        assert sorted(datasets) == sorted(NAMES) and len(datasets) == len(NAMES)

        for name in NAMES:
            assert c.post("/datasets/a/branches", json={"name": f"br-{name}"}).status_code == 201
            assert c.post("/datasets/a/tags", json={"name": f"t-{name}", "rev": "main"}).status_code == 201
        branches = all_pages(c, "/datasets/a/branches", "name")
        assert sorted(branches) == sorted(["main", *(f"br-{n}" for n in NAMES)]) and len(branches) == len(NAMES) + 1
        tags = all_pages(c, "/datasets/a/tags", "name")
        assert sorted(tags) == sorted(f"t-{n}" for n in NAMES) and len(tags) == len(NAMES)
        for name in NAMES:
            api.add_user(f"u{name}", "labeler", ("a",))
        users = all_pages(c, "/users", "name")
        assert sorted(users) == sorted(["root", *(f"u{n}" for n in NAMES)]) and len(users) == len(NAMES) + 1

        # Keys compare byte by byte everywhere: the examples' order is Python's, whatever the database's collation.
        imported(c, c.post("/datasets/a/imports", files=csv_files([[k, "x", f"text {i}"] for i, k in enumerate(KEYS)])))
        examples = all_pages(c, "/datasets/a/examples", "key")
        assert examples == sorted(KEYS)
        assert c.post("/datasets/a/branches", json={"name": "work"}).status_code == 201
        for key in KEYS:
            version = c.get(f"/datasets/a/examples/{key}", params={"rev": "work"}).json()["version"]
            assert c.put(f"/datasets/a/edits/{key}", params={"branch": "work"}, json={"label": "y", "version": version}).status_code == 200
        assert all_pages(c, "/datasets/a/edits", "key", branch="work") == sorted(KEYS)
        assert c.post("/datasets/a/commits", json={"branch": "work", "message": "all y"}).status_code == 201
        diff = c.get("/datasets/a/diff", params={"a": "main", "b": "work", "limit": 3}).json()
        relabeled, cursor = [r["key"] for r in diff["relabeled"]], diff["next_cursor"]
        while cursor:
            diff = c.get("/datasets/a/diff", params={"a": "main", "b": "work", "limit": 3, "cursor": cursor}).json()
            relabeled, cursor = relabeled + [r["key"] for r in diff["relabeled"]], diff["next_cursor"]
        assert relabeled == sorted(KEYS)
