"""GET /: the live dashboard (static HTML/CSS/JS) and the plotly.js it draws with.

The page itself needs no credentials: it asks for an API key, keeps it in the tab's
``sessionStorage`` and sends it as ``Authorization: Bearer`` on every data call (the
WebSocket gets a short-lived token from ``POST /api/v1/auth/token`` instead of the key).

Files come from the package ``nqp.service.dashboard`` (``index.html``, ``app.js``,
``app.css``) and plotly.js from the installed ``plotly`` wheel, so nothing is fetched from
a CDN and there is no build step. Only the names in :data:`ASSETS` are served (an
allowlist, so no path can escape the folder); every response carries an ``ETag`` (304 on
``If-None-Match``) and plotly.js is sent gzip-compressed to clients that accept it.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from fastapi import APIRouter, Request
from starlette.responses import Response

from nqp.service.errors import ApiError

__all__ = ["ASSETS", "CONTENT_SECURITY_POLICY", "PLOTLY_PATH", "router"]

router = APIRouter(include_in_schema=False)

#: Dashboard files served under ``/dashboard/static/<name>`` and their media types.
ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
#: Where plotly.js is served.
PLOTLY_PATH = "/dashboard/static/vendor/plotly.min.js"

#: No inline scripts and no third-party origins; plotly.js injects <style> elements and
#: the validation report (opened from a blob: URL) inlines styles and data: images.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ]
)
_SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
_GZIP_MIN_BYTES = 1024


@dataclass(frozen=True)
class _File:
    """A file held in memory, with its ETag and (when worth it) its gzip encoding."""

    body: bytes
    gzipped: bytes | None
    etag: str
    media_type: str


def _load(body: bytes, media_type: str) -> _File:
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    gzipped = gzip.compress(body, 6, mtime=0) if len(body) >= _GZIP_MIN_BYTES else None
    return _File(body, gzipped, etag, media_type)


@functools.cache
def _asset(name: str) -> _File:
    """A dashboard file (read and compressed once per process)."""
    media_type = "text/html; charset=utf-8" if name == "index.html" else ASSETS[name]
    body = resources.files("nqp.service.dashboard").joinpath(name).read_bytes()
    return _load(body, media_type)


def _plotly_js_path() -> Path:
    """``plotly.min.js`` of the installed ``plotly`` package (raises 404 if it is missing)."""
    try:
        import plotly
    except ImportError:  # a declared dependency; guard anyway for a clear answer
        raise ApiError(404, "plotly is not installed; the dashboard cannot draw.") from None
    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise ApiError(404, f"plotly.min.js not found in {path.parent}.")
    return path


@functools.cache
def _plotly() -> _File:
    return _load(_plotly_js_path().read_bytes(), "text/javascript; charset=utf-8")


def _respond(request: Request, f: _File, cache_control: str) -> Response:
    gz = f.gzipped is not None and "gzip" in request.headers.get("accept-encoding", "").lower()
    etag = f.etag[:-1] + '-gz"' if gz else f.etag  # one strong ETag per representation
    headers = {"ETag": etag, "Cache-Control": cache_control, "Vary": "Accept-Encoding"}
    headers.update(_SECURITY_HEADERS)
    if etag in {t.strip() for t in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers=headers)
    if gz:
        headers["Content-Encoding"] = "gzip"
        return Response(f.gzipped, media_type=f.media_type, headers=headers)
    return Response(f.body, media_type=f.media_type, headers=headers)


@router.get("/")
async def index(request: Request) -> Response:
    """The dashboard page (revalidated on every load: ``no-cache`` with an ETag)."""
    return _respond(request, await asyncio.to_thread(_asset, "index.html"), "no-cache")


@router.get(PLOTLY_PATH)
async def plotly_js(request: Request) -> Response:
    """plotly.js from the installed wheel (~4.8 MB, ~1.4 MB gzipped; cached for a day)."""
    f = await asyncio.to_thread(_plotly)
    return _respond(request, f, "public, max-age=86400")


@router.get("/dashboard/static/{name}")
async def asset(name: str, request: Request) -> Response:
    """One of :data:`ASSETS`; anything else is a 404 (no path reaches the filesystem)."""
    if name not in ASSETS:
        raise ApiError(404, f"No dashboard asset {name!r}.")
    return _respond(request, await asyncio.to_thread(_asset, name), "no-cache")
