"""Browser sign-in over HTTP: passwords, session cookies, CSRF, throttling, expiry, and the pages' headers."""

import base64
import hashlib
import json
import time
from pathlib import Path

import httpx

from tests.api.test_roles import seed

PASSWORD = "a long enough secret"


def browser(api, **kw) -> httpx.Client:
    """A client that behaves like a browser on the site: cookies kept, redirects not followed, Origin sent."""
    return httpx.Client(base_url=api.url, headers={"Origin": api.url, "Accept": "text/html"}, timeout=30, **kw)


def sign_in(c: httpx.Client, name: str, password: str = PASSWORD, next: str = "/") -> httpx.Response:
    return c.post("/login", data={"name": name, "password": password, "next": next})


def test_a_user_with_a_password_signs_in_and_the_cookie_works_like_a_token_on_the_api(api, cli):
    token = api.add_user("ana", "labeler")
    # From standard input when it is not a terminal; never as an argument.
    assert cli.run("user", "passwd", "ana", input=PASSWORD + "\n").returncode == 0
    assert "at least 8" in cli.run("user", "passwd", "ana", input="short\n").stderr
    assert "no password on standard input" in cli.run("user", "passwd", "ana", input="").stderr
    with api.client(token) as c:
        assert c.get("/me").json()["has_password"] is True
        assert c.put("/users/root/password", json={"password": "x" * 12}).status_code == 403  # not someone else's
        assert c.put("/users/ana/password", json={"password": "short"}).status_code == 422
    with browser(api) as b:
        r = sign_in(b, "ana", next="/d/pets")
        assert r.status_code == 303 and r.headers["location"] == "/d/pets"
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie  # plain http on loopback
        assert b.get("/api/v1/me").json()["name"] == "ana"
        # The audit trail says a password changed, never what to.
        with api.admin as c:
            events = c.get("/audit").json()
        assert PASSWORD not in json.dumps(events)
        assert PASSWORD not in api.log()


def test_cookie_writes_need_the_pages_csrf_token(api, cli):
    with api.admin as c:
        seed(c, "pets", branches=("work",))
    api.add_user("ana", "labeler", ("pets",))
    cli.run("user", "passwd", "ana", input=PASSWORD + "\n")
    with browser(api) as b:
        sign_in(b, "ana")
        version = b.get("/api/v1/datasets/pets/examples/k1", params={"rev": "work"}).json()["version"]
        edit = {"label": "dog", "version": version}
        r = b.put("/api/v1/datasets/pets/edits/k1", params={"branch": "work"}, json=edit)
        assert r.status_code == 403 and "X-CSRF-Token" in r.json()["detail"]
        page = b.get("/d/pets/label", params={"branch": "work"})
        assert page.status_code == 200, page.text
        csrf = page.text.split('name="csrf-token" content="')[1].split('"')[0]
        wrong = b.put("/api/v1/datasets/pets/edits/k1", params={"branch": "work"}, json=edit, headers={"X-CSRF-Token": "0" * 40})
        assert wrong.status_code == 403
        ok = b.put("/api/v1/datasets/pets/edits/k1", params={"branch": "work"}, json=edit, headers={"X-CSRF-Token": csrf})
        assert ok.status_code == 200, ok.text
        # Signing out ends the session on the server: the old cookie no longer works.
        cookie = b.cookies.get("s2_session")
        assert b.post("/logout", data={"csrf": csrf}).status_code == 303
    with httpx.Client(base_url=api.url, cookies={"s2_session": cookie}) as stale:
        assert stale.get("/api/v1/me").status_code == 401


def test_wrong_passwords_are_refused_then_slowed_down(api_factory, cli):
    api = api_factory(S2_LOGIN_BLOCK_S="60")  # long enough that no slow machine outlasts it between two requests
    api.add_user("ana", "labeler")
    cli.run("user", "passwd", "ana", input=PASSWORD + "\n")
    with browser(api) as b:
        for _ in range(3):
            r = sign_in(b, "ana", "wrong password")
            assert r.status_code == 401 and "wrong user name or password" in r.text
            assert "s2_session" not in r.headers.get("set-cookie", "")
        r = sign_in(b, "nobody", "wrong password")
        assert r.status_code == 401 and "wrong user name or password" in r.text  # the same answer for an unknown name
        # After three in a row, the next attempt waits, even with the right password.
        r = sign_in(b, "ana")
        assert r.status_code == 429 and "try again in" in r.text and 1 <= int(r.headers["retry-after"]) <= 60
        assert sign_in(b, "ana", "wrong password").status_code == 429  # a blocked attempt is not even checked
        # A sign-in form posted from another site is refused.
        r = b.post("/login", data={"name": "ana", "password": PASSWORD}, headers={"Origin": "http://evil.example"})
        assert r.status_code == 403 and "another site" in r.text


def test_an_expired_session_sends_the_page_to_sign_in_with_a_message(api_factory, cli):
    api = api_factory(S2_SESSION_HOURS="0.0005")  # 1.8 s
    api.add_user("ana", "engineer")
    cli.run("user", "passwd", "ana", input=PASSWORD + "\n")
    with browser(api) as b:
        assert sign_in(b, "ana").status_code == 303
        assert b.get("/").status_code == 200
        time.sleep(2.5)
        r = b.get("/d/pets")
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=%2Fd%2Fpets&why=")
        assert "session expired" in b.get(r.headers["location"]).text
        assert b.get("/api/v1/me").status_code == 401


def test_redirects_after_sign_in_stay_on_this_site(api, cli):
    api.add_user("ana", "engineer")
    cli.run("user", "passwd", "ana", input=PASSWORD + "\n")
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"):
        with browser(api) as b:
            r = sign_in(b, "ana", next=target)
            assert r.status_code == 303 and r.headers["location"] == "/", target


def test_pages_send_a_strict_csp_and_labelers_reach_only_their_datasets(api, cli):
    with api.admin as c:
        seed(c, "pets", branches=("work",))
        seed(c, "secret")
    api.add_user("ana", "labeler", ("pets",))
    cli.run("user", "passwd", "ana", input=PASSWORD + "\n")
    with browser(api) as b:
        sign_in(b, "ana")
        home = b.get("/")
        assert home.status_code == 200 and "/d/pets" in home.text and "secret" not in home.text
        csp = home.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert home.headers["x-content-type-options"] == "nosniff" and home.headers["x-frame-options"] == "DENY"
        # By URL, by fetch, by media link: a dataset not assigned to her is refused.
        page = b.get("/d/secret")
        assert page.status_code == 403 and "not assigned to dataset" in page.text
        assert b.get("/d/secret/label").status_code == 403
        assert b.get("/d/secret/examples/k1").status_code == 403
        assert b.get("/api/v1/datasets/secret/queue").status_code == 403
        with api.admin as c:
            blob = c.get("/datasets/secret/examples/k1").json()["input"]
        assert b.get(f"/api/v1/datasets/secret/media/{blob}").status_code == 403
        assert b.get("/no/such/page").status_code == 404 and "there is no page at" in b.get("/no/such/page").text
        assert b.get("/d/pets/label", params={"queue": "nope"}).status_code == 404
        assert b.get("/d/pets/label", params={"max_confidence": "lots"}).status_code == 422


def test_pinned_browser_files_are_served_with_their_integrity_and_cached_for_a_year(api, cli):
    manifest = json.loads((Path(__file__).resolve().parents[2] / "server" / "web" / "vendor.json").read_text())["packages"]
    api.add_user("ana", "engineer")
    cli.run("user", "passwd", "ana", input=PASSWORD + "\n")
    with browser(api) as b:
        sign_in(b, "ana")
        html = b.get("/").text
        for name, pkg in manifest.items():
            url = f"/assets/vendor/{name}-{pkg['version']}.js"
            r = b.get(url, params={"v": "1"})
            assert r.status_code == 200, url
            digest = "sha384-" + base64.b64encode(hashlib.sha384(r.content).digest()).decode()
            assert digest == pkg["integrity"], name
            assert "immutable" in r.headers["cache-control"] and r.headers["content-type"].startswith("text/javascript")
            if not pkg.get("tests_only"):
                assert f'integrity="{pkg["integrity"]}"' in html
        assert b.get("/assets/../server/config.py").status_code == 404
        assert b.get("/assets/labeling/../../server/config.py").status_code == 404
