"""Rendering pages: one Jinja2 environment over the shared layout and each domain's templates.

Templates escape everything by default (text from datasets is data, never markup). Assets are
served from /assets/ under a content-hashed URL, so browsers may cache them for a year; the
pinned third-party files carry their Subresource Integrity hash from server/web/vendor.json.
"""

import hashlib
import json
from functools import lru_cache
from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse

WEB = Path(__file__).resolve().parent
LABELING = WEB.parent.parent / "labeling"
DASHBOARDS = WEB.parent / "dashboards"
TEMPLATES = [WEB / "templates", LABELING / "templates", DASHBOARDS / "templates"]
# URL prefix under /assets/ -> folder; "" is the shared layout's
ASSETS = {"": WEB / "static", "labeling": LABELING / "static", "dashboards": DASHBOARDS / "static"}

# Pages run only our own files: no inline script, no eval, nothing from elsewhere; no framing.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # pages show live state and the caller's data
}


def asset_path(url_path: str) -> Path | None:
    """The file an /assets/ path names, or None (never a path outside the asset folders)."""
    prefix, _, rest = url_path.partition("/")
    folder, name = (ASSETS[prefix], rest) if prefix and prefix in ASSETS else (ASSETS[""], url_path)
    target = (folder / name).resolve()
    if not target.is_file() or folder.resolve() not in target.parents:
        return None
    return target


@lru_cache(maxsize=256)
def _digest(path: Path, mtime: float) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def asset_url(url_path: str) -> str:
    """/assets/PATH?v=HASH: a new URL whenever the file changes."""
    path = asset_path(url_path)
    if path is None:
        raise LookupError(f"no asset {url_path!r}")
    return f"/assets/{url_path}?v={_digest(path, path.stat().st_mtime)}"


@lru_cache(maxsize=1)
def vendor_manifest() -> dict:
    return json.loads((WEB / "vendor.json").read_text())["packages"]


def vendor(name: str) -> dict:
    """A pinned third-party file: its URL and integrity."""
    pkg = vendor_manifest()[name]
    return {"url": f"/assets/vendor/{name.split('/')[-1]}-{pkg['version']}.js", "integrity": pkg["integrity"]}


@lru_cache(maxsize=1)
def environment():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=FileSystemLoader([str(p) for p in TEMPLATES]),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(asset=asset_url, vendor=vendor)
    return env


def page(request: Request, template: str, status: int = 200, headers: dict | None = None, **context) -> HTMLResponse:
    """A rendered page with the headers every page sends."""
    context.setdefault("who", request.scope.get("s2.page_user"))
    context.setdefault("csrf", request.scope.get("s2.csrf", ""))
    context.setdefault("request_path", request.url.path)
    html = environment().get_template(template).render(**context)
    return HTMLResponse(html, status_code=status, headers={**PAGE_HEADERS, **(headers or {})})
