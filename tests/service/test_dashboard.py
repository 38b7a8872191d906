"""The dashboard's HTTP surface: the page, its assets, plotly.js, no path escapes."""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from nqp.service.api.routes import dashboard
from nqp.service.app import create_app

from .conftest import make_settings

DASHBOARD_DIR = Path(dashboard.__file__).resolve().parents[2] / "dashboard"


@pytest.fixture
def client(tmp_path) -> Iterator[TestClient]:
    app = create_app(make_settings(tmp_path / "data"))
    app.include_router(dashboard.router)
    with TestClient(app) as c:
        yield c


def test_index_is_html_without_auth_and_references_only_local_assets(client):
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.content == (DASHBOARD_DIR / "index.html").read_bytes()
    html = r.text
    assert '<meta name="viewport"' in html
    refs = [r for r in re.findall(r'(?:src|href)="([^"]+)"', html) if r != "data:,"]
    assert sorted(refs) == sorted(
        ["/dashboard/static/app.css", "/dashboard/static/app.js", dashboard.PLOTLY_PATH]
    )
    for ref in refs:  # every referenced asset is served
        assert client.get(ref).status_code == 200, ref
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-cache"


def test_index_is_not_in_the_openapi_schema(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert "/" not in paths
    assert not any(p.startswith("/dashboard") for p in paths)


@pytest.mark.parametrize(
    ("name", "media_type"),
    [("app.js", "text/javascript; charset=utf-8"), ("app.css", "text/css; charset=utf-8")],
)
def test_assets_are_served_with_their_media_type(client, name, media_type):
    r = client.get(f"/dashboard/static/{name}", headers={"Accept-Encoding": "identity"})
    assert r.status_code == 200
    assert r.headers["content-type"] == media_type
    assert "content-encoding" not in r.headers
    assert r.content == (DASHBOARD_DIR / name).read_bytes()


def test_plotly_comes_from_the_installed_wheel_gzipped_and_cacheable(client):
    plotly = pytest.importorskip("plotly")
    expected = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_bytes()
    plain = client.get(dashboard.PLOTLY_PATH, headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200
    assert plain.headers["content-type"] == "text/javascript; charset=utf-8"
    assert plain.content == expected
    assert "max-age=86400" in plain.headers["cache-control"]
    # httpx decodes gzip transparently: check the wire bytes via the raw stream
    with client.stream("GET", dashboard.PLOTLY_PATH, headers={"Accept-Encoding": "gzip"}) as r:
        assert r.headers["content-encoding"] == "gzip"
        wire = b"".join(r.iter_raw())
    assert len(wire) < len(expected) / 2
    assert gzip.decompress(wire) == expected
    assert r.headers["etag"] != plain.headers["etag"]  # one ETag per representation


def test_etag_revalidation_answers_304(client):
    first = client.get("/dashboard/static/app.js", headers={"Accept-Encoding": "gzip"})
    etag = first.headers["etag"]
    again = client.get(
        "/dashboard/static/app.js", headers={"If-None-Match": etag, "Accept-Encoding": "gzip"}
    )
    assert again.status_code == 304
    assert again.content == b""
    other = client.get(
        "/dashboard/static/app.js", headers={"If-None-Match": '"stale"', "Accept-Encoding": "gzip"}
    )
    assert other.status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/static/missing.js",
        "/dashboard/static/index.html",  # served at / only
        "/dashboard/static/__init__.py",
        "/dashboard/static/../routes/dashboard.py",
        "/dashboard/static/..%2F..%2Fconfig.py",
        "/dashboard/static/%2e%2e/%2e%2e/app.py",
        "/dashboard/static/vendor/../../../../etc/passwd",
        "/dashboard/static/vendor/widgetbundle.js",
        "/dashboard/static/app.js%00.css",
        "/dashboard/static/",
    ],
)
def test_unknown_assets_and_traversal_attempts_are_404(client, path):
    r = client.get(path)
    assert r.status_code == 404, (path, r.status_code)
    assert b"__all__" not in r.content
    assert b"root:" not in r.content
    assert "javascript" not in r.headers.get("content-type", "")


def test_data_endpoints_still_need_a_key(client):
    # the page is public; the data it loads is not
    assert client.get("/api/v1/sources").status_code == 401
    assert client.get("/api/v1/metrics").status_code == 401


def test_page_script_keeps_the_key_out_of_storage_that_persists_and_out_of_urls():
    js = (DASHBOARD_DIR / "app.js").read_text(encoding="utf-8")
    assert "localStorage" not in js
    assert "document.cookie" not in js
    assert not re.search(r"\bconsole\.\w+\(", js)  # nothing (a key included) is logged
    # no credential in a URL: the WebSocket gets its short-lived token in a first message
    assert "?token=" not in js
    assert 'type: "auth", token' in js
