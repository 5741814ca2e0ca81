"""Pages every part of the site shares: sign-in, sign-out, assets, and how a page answers errors.

A page handler raises the same domain errors as the API; PageRoute turns them into a page
with the message (never JSON, never a stack trace), and a missing or expired session into a
redirect to /login that comes back to the page afterwards.
"""

from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.routing import APIRoute

from server.api.deps import SESSION_COOKIE, principal_of
from server.auth.schemas import Principal
from server.errors import S2Error, TooManyAttempts, Unauthorized
from server.web.render import PAGE_HEADERS, asset_path, page

YEAR = "public, max-age=31536000, immutable"


class SignInNeeded(Exception):
    """The page needs a signed-in browser; why says what happened to the last session, if anything."""

    def __init__(self, why: str | None = None):
        super().__init__(why or "sign in to continue")
        self.why = why


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this site only (never //elsewhere or a full URL)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target or urlsplit(target).netloc:
        return "/"
    return target


class PageRoute(APIRoute):
    """A route that renders a page: errors become pages with their message, a missing session a sign-in."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            from server.api.problems import status_of

            try:
                return await handler(request)
            except SignInNeeded as exc:
                here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                query = f"next={quote(here, safe='')}" + (f"&why={quote(exc.why, safe='')}" if exc.why else "")
                return RedirectResponse(f"/login?{query}", status_code=303, headers={"Cache-Control": "no-store"})
            except S2Error as exc:
                status, _ = status_of(exc)
                return page(request, "error.html", status, title=_TITLES.get(status, "Error"), message=str(exc))
            except RequestValidationError as exc:
                problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())[1:])}: {e.get('msg')}" for e in exc.errors())
                return page(request, "error.html", 422, title="Bad request", message=f"this address is not valid: {problems}")

        return run


_TITLES = {401: "Sign in", 403: "Not allowed", 404: "Not found", 409: "Conflict", 422: "Bad request", 429: "Slow down"}

router = APIRouter(route_class=PageRoute, include_in_schema=False)


async def page_user(request: Request) -> Principal:
    """The signed-in user of a page request (SignInNeeded without a live session)."""
    from server.auth.signin import csrf_token

    secret = request.cookies.get(SESSION_COOKIE)
    if not secret:
        raise SignInNeeded()
    try:
        who = await principal_of(secret, session=True)
    except Unauthorized as exc:
        raise SignInNeeded(str(exc)) from None
    request.scope["s2.page_user"] = who
    request.scope["s2.csrf"] = csrf_token(secret)
    return who


def check_form_csrf(request: Request, sent: str) -> None:
    """A cookie-carried form post must carry the page's CSRF token."""
    from server.auth.signin import csrf_matches
    from server.errors import Forbidden

    if not csrf_matches(request.cookies.get(SESSION_COOKIE, ""), sent):
        raise Forbidden("this form is out of date (or came from another site): reload the page and try again")


def _same_origin(request: Request) -> bool:
    """Whether a form post came from one of our own pages (browsers send Origin on every POST)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return request.headers.get("sec-fetch-site") in (None, "same-origin", "none")
    return urlsplit(origin).netloc == request.headers.get("host", "")


@router.get("/login")
async def login_form(request: Request, next: str = "/", why: str | None = None) -> Response:
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        try:
            await principal_of(secret, session=True)
            return RedirectResponse(_safe_next(next), status_code=303)
        except Unauthorized:
            pass
    return page(request, "login.html", title="Sign in", next=_safe_next(next), name="", message=why, who=None)


@router.post("/login")
def login(
    request: Request, name: str = Form("", max_length=128), password: str = Form("", max_length=4096), next: str = Form("/")
) -> Response:
    from server.auth.signin import sign_in
    from server.config import get_settings
    from server.db import run_in_transaction

    target = _safe_next(next)

    def again(status: int, message: str, headers: dict | None = None) -> Response:
        return page(request, "login.html", status, headers=headers, title="Sign in", next=target, name=name, message=message, who=None)

    if not _same_origin(request):
        return again(403, "this sign-in form came from another site: open the sign-in page of this server and try again")
    if not name or not password:
        return again(422, "enter your user name and your password")
    settings = get_settings()

    def attempt(db):
        try:
            return sign_in(db, name=name, password=password, hours=settings.session_hours, first_block_s=settings.login_block_s)
        except (Unauthorized, TooManyAttempts) as exc:
            return exc  # the failed attempt is counted: this transaction commits

    outcome = run_in_transaction(attempt)
    if isinstance(outcome, TooManyAttempts):
        return again(429, str(outcome), {"Retry-After": str(outcome.extra.get("retry_after", 1))})
    if isinstance(outcome, Unauthorized):
        return again(401, f"{outcome}. Passwords are set with: s2 user passwd NAME")
    secret, _ = outcome
    hours = settings.session_hours
    response = RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=int(hours * 3600) + 86400,  # outlives the session by a day, so an expired one is said to be expired
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout")
def logout(request: Request, csrf: str = Form("")) -> Response:
    from server.auth.signin import sign_out
    from server.db import run_in_transaction

    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        check_form_csrf(request, csrf)
        run_in_transaction(lambda db: sign_out(db, secret))
        from server.api import auth_cache

        auth_cache.clear()
    response = RedirectResponse("/login?why=" + quote("you are signed out", safe=""), status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/session")
async def session_info(request: Request) -> Response:
    """The signed-in browser's user and CSRF token, for a page's script after it signed in again in another tab."""
    from fastapi.responses import JSONResponse

    who = await page_user(request)
    return JSONResponse({"user": who.name, "role": who.role, "csrf": request.scope["s2.csrf"]}, headers={"Cache-Control": "no-store"})


@router.get("/assets/{path:path}")
def asset(path: str, v: str | None = None) -> Response:
    from server.errors import NotFound

    found = asset_path(path)
    if found is None:
        raise NotFound(f"no asset '{path}'")
    media = "text/javascript" if found.suffix in (".js", ".mjs") else None
    headers = {"Cache-Control": YEAR if v else "no-cache", "X-Content-Type-Options": "nosniff"}
    return FileResponse(found, media_type=media, headers=headers)


def not_found_page(request: Request) -> Response:
    """The page for an address no route serves."""
    return page(request, "error.html", 404, title="Not found", message=f"there is no page at {request.url.path}", who=None)


__all__ = ["router", "page_user", "check_form_csrf", "PageRoute", "PAGE_HEADERS", "not_found_page"]
