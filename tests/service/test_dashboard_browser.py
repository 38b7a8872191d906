"""The dashboard in a real browser (Debian's headless Chromium via Playwright) against a
real uvicorn server: sign-in, live points through the WebSocket, reconnect after a server
restart, platform metrics, validation, portfolio optimisation, a phone-sized screen.

Screenshots go to the test's ``tmp_path`` (printed; run with ``-s`` to see the path).
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import SMALL_ENGINE

pytestmark = pytest.mark.services

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
REQUIRE = os.environ.get("NQP_REQUIRE_SERVICES") == "1"
HIT_WINDOW = 50  # app.js HIT_WINDOW
WAIT_MS = 15_000

# The app as `nqp serve` builds it, plus the dashboard router (until app.py includes it),
# logging at info through the root logger as `nqp serve` does.
_LAUNCH = """
import json, logging, sys
import uvicorn
from nqp.config import Settings
from nqp.service.app import create_app
from nqp.service.api.routes import dashboard
logging.basicConfig(level=logging.INFO)
app = create_app(Settings(data_dir=sys.argv[1], **json.loads(sys.argv[3])))
if not any(getattr(r, "path", None) == "/" for r in app.routes):
    app.include_router(dashboard.router)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_config=None, access_log=False,
            timeout_graceful_shutdown=5)
"""


def _missing(reason: str) -> None:
    if REQUIRE:
        pytest.fail(f"{reason} and NQP_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(f"{reason} (set NQP_REQUIRE_SERVICES=1 to make this a failure)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``nqp``'s app under uvicorn in a subprocess on a fixed loopback port."""

    def __init__(self, data_dir: Path, port: int, log: Path) -> None:
        self.data_dir, self.port, self.log = data_dir, port, log
        self.url = f"http://127.0.0.1:{port}"
        self.start()

    def start(self) -> None:
        data_dir, port, log = self.data_dir, self.port, self.log
        self._out = log.open("a")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCH, str(data_dir), str(port), json.dumps(SMALL_ENGINE)],
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"server did not become ready:\n{log.read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        finally:
            self._out.close()


class Feeder:
    """Posts one point of a sine every ``period_s`` to POST /api/v1/process/realtime."""

    def __init__(self, url: str, key: str, source: str, start: int, period_s: float = 0.05):
        self.url, self.key, self.source = url, key, source
        self.k = start
        self.period_s = period_s
        self.posted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=5) as client:
            while not self._stop.is_set():
                body = {"source": self.source, "data": [point(self.k)], "timestamp": time.time()}
                if client.post("/api/v1/process/realtime", json=body).status_code == 200:
                    self.k += 1
                    self.posted += 1
                self._stop.wait(self.period_s)

    def __enter__(self) -> Feeder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def point(k: int) -> float:
    return math.sin(0.35 * k) + 0.3 * math.sin(0.05 * k)


def realised_hit_rate(preds: list[dict]) -> list[float]:
    """The dashboard's rule, independently: rolling hits of the last 50 scored predictions."""
    by_seq = {p["sequence"]: p for p in preds}
    events = []
    for p in preds:
        if p["warming_up"] or p["direction"] not in ("up", "down"):
            continue
        later = by_seq.get(p["sequence"] + p["horizon"])
        if later is None or later["value"] == p["value"]:
            continue
        hit = (later["value"] > p["value"]) == (p["direction"] == "up")
        events.append((later["sequence"], hit))
    events.sort()
    hits = [h for _, h in events]
    return [
        sum(hits[max(0, i + 1 - HIT_WINDOW) : i + 1]) / min(i + 1, HIT_WINDOW)
        for i in range(len(hits))
    ]


def chart_len(page, chart: str, trace: int = 0) -> int:
    return page.evaluate(
        "([id, i]) => { const el = document.getElementById(id);"
        " return el && el.data && el.data[i] ? el.data[i].x.length : 0; }",
        [chart, trace],
    )


def wait_chart_len(page, chart: str, at_least: int, trace: int = 0) -> None:
    page.wait_for_function(
        "([id, i, n]) => { const el = document.getElementById(id);"
        " return el && el.data && el.data[i] && el.data[i].x.length >= n; }",
        arg=[chart, trace, at_least],
        timeout=WAIT_MS,
    )


def no_horizontal_overflow(page) -> bool:
    return page.evaluate(
        "() => document.documentElement.scrollWidth <= window.innerWidth"
        " && document.body.scrollWidth <= window.innerWidth"
    )


@pytest.fixture
def browser() -> Iterator[object]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed")
    if not Path(CHROMIUM).is_file():
        _missing(f"Chromium is not installed at {CHROMIUM}")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def test_dashboard_end_to_end(browser, tmp_path):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    data_dir = tmp_path / "data"
    log = tmp_path / "server.log"
    port = _free_port()
    server = Server(data_dir, port, log)
    try:
        _run(browser, server, data_dir, shots)
    finally:
        server.stop()
        print(f"\ndashboard screenshots: {shots}")
    assert (data_dir / "admin.key").read_text().strip() not in log.read_text()
    assert "token=" not in log.read_text()  # the WebSocket credential travels in a message


def _run(browser, server: Server, data_dir: Path, shots: Path) -> None:
    admin = (data_dir / "admin.key").read_text().strip()
    h = {"Authorization": f"Bearer {admin}"}
    source = "sensor-a"
    t0 = time.time() - 40
    history = [point(k) for k in range(40)]
    r = httpx.post(
        server.url + "/api/v1/process/realtime",
        json={"source": source, "data": history, "timestamp": [t0 + k for k in range(40)]},
        headers=h,
    )
    assert r.status_code == 200, r.text

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on(
        "console",
        lambda m: (
            problems.append(f"console: {m.text}")
            if "Content Security Policy" in m.text or m.type == "warning"
            else None
        ),
    )
    failed: set[tuple[str, int]] = set()
    page.on(
        "response",
        lambda r: (
            failed.add((r.url.removeprefix(server.url), r.status)) if r.status >= 400 else None
        ),
    )
    page.goto(server.url + "/")
    page.wait_for_selector("#login-form", state="visible")

    # a wrong key: an error on the form, nothing stored
    page.fill("#api-key", "nqp_wrong_key_0000000000000000")
    page.click("#login-submit")
    page.wait_for_function(
        "() => document.getElementById('login-error').textContent.includes('not accepted')",
        timeout=WAIT_MS,
    )
    assert page.is_visible("#login-form")
    assert page.is_hidden("#app")
    assert page.evaluate("() => sessionStorage.length") == 0
    page.screenshot(path=shots / "01-wrong-key.png")

    # the admin key: signed in, the key in sessionStorage only
    page.fill("#api-key", admin)
    page.click("#login-submit")
    page.wait_for_selector("#app", state="visible", timeout=WAIT_MS)
    assert "admin" in page.inner_text("#who")
    assert page.evaluate("() => sessionStorage.getItem('nqp.apiKey')") == admin
    assert page.evaluate("() => localStorage.length") == 0
    assert page.evaluate("() => document.cookie") == ""

    # history, then live points through the WebSocket
    wait_chart_len(page, "chart-series", 40)
    page.wait_for_function(
        "() => document.getElementById('conn').dataset.state === 'live'", timeout=WAIT_MS
    )
    assert page.input_value("#source-select") == source
    before = chart_len(page, "chart-series")
    with Feeder(server.url, admin, source, start=40) as feeder:
        wait_chart_len(page, "chart-series", before + 10)
        markers = chart_len(page, "chart-series", 1) + chart_len(page, "chart-series", 2)
        assert markers > 0  # up/down triangles
        page.wait_for_function(
            "() => document.getElementById('c-hit').textContent.endsWith('%')", timeout=WAIT_MS
        )
        page.screenshot(path=shots / "02-live.png", full_page=True)

        # platform view: rates from counter deltas while points flow
        page.click("#tab-platform")
        page.wait_for_function(
            "() => parseFloat(document.getElementById('m-rate').textContent) > 0",
            timeout=WAIT_MS,
        )
        assert page.locator("#stage-table tbody tr").count() >= 2
        page.wait_for_selector(f"#sources-table tbody tr >> text={source}", timeout=WAIT_MS)
        assert "No validation run yet" in page.inner_text("#validation-summary")
        wait_chart_len(page, "chart-throughput", 1)
    end = feeder.k

    # the realised hit rate drawn equals the rule recomputed here on the stored predictions
    deadline = time.monotonic() + 10
    while True:  # predictions are stored by a background writer: wait for the last ones
        stored = httpx.get(
            server.url + "/api/v1/predictions",
            params={"source": source, "limit": 1000},
            headers=h,
        ).json()["predictions"]
        if len(stored) == end or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert [p["sequence"] for p in stored] == list(range(1, end + 1))
    page.click("#tab-live")
    wait_chart_len(page, "chart-series", end)
    drawn = page.evaluate("() => document.getElementById('chart-confidence').data[1].y")
    expected = realised_hit_rate(stored)
    assert len(expected) > 0
    assert drawn == pytest.approx(expected, abs=1e-12)

    # validation run from the platform view, then its HTML report
    page.click("#tab-platform")
    page.select_option("#v-dataset", "mackey_glass")
    page.fill("#v-points", "120")
    page.click("#validation-form button[type=submit]")
    page.wait_for_selector("#v-open-report", timeout=30_000)
    assert "succeeded" in page.inner_text("#validation-summary")
    with context.expect_page() as report_info:
        page.click("#v-open-report")
    report = report_info.value
    report.wait_for_load_state()
    report.wait_for_function("() => document.querySelector('h1') !== null", timeout=WAIT_MS)
    assert report.url.startswith("blob:")
    report.close()
    page.screenshot(path=shots / "03-platform.png", full_page=True)

    # the server restarts: the page reconnects by itself and receives new points
    server.stop()
    page.wait_for_function(
        "() => document.getElementById('conn').dataset.state !== 'live'", timeout=WAIT_MS
    )
    server.start()  # same port, same data
    # points posted while the page may still be reconnecting arrive by the WebSocket or
    # by the history reload after the reconnect, either way once
    gap = [point(k) for k in range(end, end + 5)]
    r = httpx.post(
        server.url + "/api/v1/process/realtime", json={"source": source, "data": gap}, headers=h
    )
    assert r.status_code == 200, r.text
    page.click("#tab-live")
    page.wait_for_function(
        "() => document.getElementById('conn').dataset.state === 'live'", timeout=30_000
    )
    with Feeder(server.url, admin, source, start=end + 5, period_s=0.02) as feeder:
        wait_chart_len(page, "chart-series", end + 10)
    end = feeder.k
    wait_chart_len(page, "chart-series", end)
    page.wait_for_timeout(300)
    labels = page.evaluate("() => document.getElementById('chart-series').data[0].text")
    assert [int(t.split()[1]) for t in labels] == list(range(1, end + 1))  # no gap, no repeat

    # optimisation: the prefilled example solves; a bad budget is shown next to its field
    page.click("#tab-optimize")
    page.click("#pf-submit")
    page.wait_for_selector("#pf-selected .chip", timeout=WAIT_MS)
    assert page.locator("#pf-selected .chip").count() == 3
    wait_chart_len(page, "chart-convergence", 2)
    page.screenshot(path=shots / "04-optimize.png", full_page=True)
    page.fill("#pf-budget", "99")
    page.click("#pf-submit")
    page.wait_for_function(
        "() => document.querySelector('[data-error-for=budget]').textContent.includes('exceeds')",
        timeout=WAIT_MS,
    )
    assert page.get_attribute("#pf-budget", "aria-invalid") == "true"

    # a phone-sized screen: no horizontal overflow in any view
    page.set_viewport_size({"width": 390, "height": 844})
    for view in ("optimize", "platform", "live"):
        page.click(f"#tab-{view}")
        page.wait_for_timeout(400)  # responsive relayout of the charts
        assert no_horizontal_overflow(page), view
        page.screenshot(path=shots / f"05-phone-{view}.png", full_page=True)

    # sign out clears the key
    page.click("#signout")
    page.wait_for_selector("#login-form", state="visible")
    assert page.evaluate("() => sessionStorage.getItem('nqp.apiKey')") is None
    assert no_horizontal_overflow(page)

    # a viewer may watch but not optimise; revoking its key sends the page back to the form
    created = httpx.post(
        server.url + "/api/v1/keys", json={"name": "viewer", "role": "viewer"}, headers=h
    ).json()
    page.fill("#api-key", created["key"])
    page.click("#login-submit")
    page.wait_for_selector("#app", state="visible", timeout=WAIT_MS)
    page.click("#tab-optimize")
    page.click("#pf-submit")
    page.wait_for_function(
        "() => document.querySelector('[data-error-for=_form]').textContent.includes('role')",
        timeout=WAIT_MS,
    )
    page.click("#tab-live")
    revoked = httpx.delete(server.url + f"/api/v1/keys/{created['id']}", headers=h)
    assert revoked.status_code == 204
    page.wait_for_selector("#login-form", state="visible", timeout=WAIT_MS)  # next poll: 401
    assert "rejected" in page.inner_text("#login-error")
    assert page.evaluate("() => sessionStorage.length") == 0
    page.screenshot(path=shots / "06-revoked.png")
    context.close()
    assert problems == []
    # the only failed requests are the expected ones: the wrong key and the revoked one
    # (401), the probe for a list of validation runs (absent: 405), the over-budget (422)
    # and the viewer's (403) portfolio
    expected = {
        ("/api/v1/validation/runs?limit=1", 405),
        ("/api/v1/optimize/portfolio", 422),
        ("/api/v1/optimize/portfolio", 403),
    }
    assert {f for f in failed if f[1] != 401} <= expected, failed
    assert ("/api/v1/status", 401) in failed
