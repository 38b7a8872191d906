"""The dashboard in a real browser (Debian's headless Chromium via Playwright) against a
real uvicorn server: sign-in, live points of the market demo scenario (streamed by
:mod:`nqp.scenarios.runner`) through the WebSocket, the live charts against the stored
predictions, reconnect after a server restart, platform metrics against
``GET /api/v1/metrics``, validation, portfolio optimisation against the API, a phone-sized
screen.

Screenshots go to the test's ``tmp_path`` (printed; run with ``-s`` to see the path).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
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

from nqp.scenarios import ScenarioSummary, stream_scenarios

from .conftest import SMALL_ENGINE

pytestmark = pytest.mark.services

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
REQUIRE = os.environ.get("NQP_REQUIRE_SERVICES") == "1"
HIT_WINDOW = 50  # app.js HIT_WINDOW
WAIT_MS = 15_000
DEMO_RATE = 25.0  # points/s of the market demo over its five tickers: 5 per ticker
LIVE_MAX_AGE_S = 5.0  # a live point is drawn at most this long after its timestamp
WATCHED = "market.ACME"
TICKERS = ("ACME", "BOLT", "CRUX", "DYNA", "EPIC")

# The app as `nqp serve` builds it, logging at info through the root logger as `nqp serve`
# does.
_LAUNCH = """
import json, logging, sys
import uvicorn
from nqp.config import Settings
from nqp.service.app import create_app
logging.basicConfig(level=logging.INFO)
app = create_app(Settings(data_dir=sys.argv[1], **json.loads(sys.argv[3])))
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
        # batch callbacks may go to this server (where an unknown path refuses them)
        self.settings = {
            **SMALL_ENGINE,
            "service": {"callback_allowed_hosts": [f"127.0.0.1:{port}"]},
        }
        self.start()

    def start(self) -> None:
        data_dir, port, log = self.data_dir, self.port, self.log
        self._out = log.open("a")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCH, str(data_dir), str(port), json.dumps(self.settings)],
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


class DemoFeed:
    """The market demo scenario streamed to the server by the scenario runner
    (:func:`nqp.scenarios.stream_scenarios`, as ``nqp demo`` does) from a thread, from
    entering the ``with`` block until leaving it (then the points produced are drained)."""

    def __init__(self, url: str, key: str, *, seed: int, rate: float = DEMO_RATE) -> None:
        self.url, self.key, self.seed, self.rate = url, key, seed, rate
        self.summary: ScenarioSummary | None = None
        self.error: BaseException | None = None
        self.lines: list[str] = []
        self.started_at = math.nan
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def go() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self.started_at = time.time()
            self._ready.set()
            out = await stream_scenarios(
                ["market"],
                base_url=self.url,
                api_key=self.key,
                rate=self.rate,
                duration=120.0,  # a cap: the block ends it
                seed=self.seed,
                stop=self._stop,
                handle_sigint=False,
                echo=self.lines.append,
            )
            self.summary = out["market"]

        try:
            asyncio.run(go())
        except BaseException as exc:  # reported by check()
            self.error = exc
        finally:
            self._ready.set()

    def __enter__(self) -> DemoFeed:
        self._thread.start()
        assert self._ready.wait(10), "the scenario runner did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # the run already ended: its loop closed
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)

    def check(self) -> ScenarioSummary:
        """The runner's summary: every point it produced was sent and predicted in order."""
        assert not self._thread.is_alive(), "the scenario runner did not stop"
        assert self.error is None, repr(self.error)
        s = self.summary
        assert s is not None
        assert s.sources == len(TICKERS)
        assert s.points_sent == s.points_generated > 0, s
        assert (s.points_lost, s.errors, s.sequence_mismatches) == (0, 0, 0), s.error_samples
        return s


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


def wait_chart_holds(page, stored: list[dict]) -> None:
    """Wait until the series chart holds as many points as ``stored``; say which are
    missing if it does not."""
    try:
        wait_chart_len(page, "chart-series", len(stored))
    except Exception:
        labels = page.evaluate("() => document.getElementById('chart-series').data[0].text")
        missing = sorted({p["sequence"] for p in stored} - {int(t.split()[1]) for t in labels})
        raise AssertionError(
            f"the chart lacks the stored predictions {missing}"
            f" (banner {page.inner_text('#banner')!r}, note {page.inner_text('#live-note')!r})"
        ) from None


def no_horizontal_overflow(page) -> bool:
    return page.evaluate(
        "() => document.documentElement.scrollWidth <= window.innerWidth"
        " && document.body.scrollWidth <= window.innerWidth"
    )


# ---------------------------------------------------------------- what the page shows

# A new point of the selected source drawn at most maxAge seconds after its timestamp, the
# first drawn point no older than `since` (not the previous source): [sequence, age].
_FRESH_POINT = """([since, after, maxAge]) => {
  const el = document.getElementById('chart-series');
  const t = el && el.data && el.data[0];
  if (!t || !t.x.length) return false;
  const first = new Date(t.x[0]).getTime() / 1000;
  const last = new Date(t.x[t.x.length - 1]).getTime() / 1000;
  const seq = parseInt(t.text[t.text.length - 1].split(' ')[1], 10);
  const age = Date.now() / 1000 - last;
  return first >= since && seq > after && age <= maxAge ? [seq, age] : false;
}"""

# The data the live charts were given by their last redraw, and the cards.
_LIVE_CHARTS = """() => {
  const d = (id) => document.getElementById(id).data;
  const secs = (xs) => xs.map((x) => new Date(x).getTime() / 1000);
  const [series, conf, pat, q] = ['chart-series', 'chart-confidence', 'chart-patterns',
    'chart-quantum'].map(d);
  return {
    labels: series[0].text, value: series[0].y, time: secs(series[0].x),
    confidence: conf[0].y, confidenceTime: secs(conf[0].x), hit: conf[1].y,
    patternKinds: pat[0].y, patternStrengths: pat[0].x,
    energy: q[0].y, coherence: q[1].y, quantumTime: secs(q[0].x),
    coherenceAxis: document.getElementById('chart-quantum').layout.yaxis2.range,
    cardValue: document.getElementById('c-value').textContent,
    cardTime: document.getElementById('c-time').textContent,
  };
}"""

# The platform view's cards and tables as text.
_PLATFORM = """() => {
  const text = (id) => document.getElementById(id).textContent;
  const rows = (id) => [...document.getElementById(id).tBodies[0].rows]
    .map((r) => [...r.cells].map((c) => c.textContent));
  return {
    rate: text('m-rate'), total: text('m-total'), latency: text('m-latency'),
    latencySub: text('m-latency-sub'), batch: text('m-batch'), batchSub: text('m-batch-sub'),
    queue: text('m-queue'), ws: text('m-ws'), errors: text('m-errors'), http: text('m-http'),
    stages: rows('stage-table'), errorRows: rows('error-table'),
  };
}"""

# app.js STAGES: the rows of the stage table and the histogram series each reads
STAGES = {
    "request (queue + engine)": ("nqp_stage_seconds", {"stage": "request"}),
    "engine (per batch)": ("nqp_stage_seconds", {"stage": "engine"}),
    "storage": ("nqp_stage_seconds", {"stage": "storage"}),
    "optimise": ("nqp_stage_seconds", {"stage": "optimize"}),
    "HTTP realtime": ("nqp_http_request_seconds", {"route": "/api/v1/process/realtime"}),
}


def numbers(text: str) -> list[float]:
    """The numbers in a text as the page writes them ("1,234", "0.52", "-0.188000")."""
    return [float(n.replace(",", "")) for n in re.findall(r"-?\d[\d,]*(?:\.\d+)?", text)]


def get_metrics(server: Server, h: dict) -> dict:
    r = httpx.get(server.url + "/api/v1/metrics", headers=h)
    assert r.status_code == 200, r.text
    return r.json()


def samples(m: dict, name: str, where: dict | None = None) -> list[dict]:
    where = where or {}
    return [s for s in m.get(name, []) if all(s["labels"].get(k) == v for k, v in where.items())]


def total(m: dict, name: str, where: dict | None = None) -> float:
    return sum(s["value"] for s in samples(m, name, where))


def histogram_quantile(q: float, m: dict, name: str, where: dict) -> tuple[float, bool] | None:
    """Prometheus' histogram_quantile over a cumulative histogram: linear within the bucket;
    in the +Inf bucket, the last finite bound (flagged). In seconds."""
    bs = sorted(
        (math.inf if s["labels"]["le"] == "+Inf" else float(s["labels"]["le"]), s["value"])
        for s in samples(m, f"{name}_bucket", where)
    )
    if not bs or not bs[-1][1] > 0:
        return None
    rank = q * bs[-1][1]
    prev_le = prev_count = 0.0
    for le, count in bs:
        if count >= rank:
            if le == math.inf:
                return prev_le, True
            frac = (rank - prev_count) / (count - prev_count) if count > prev_count else 0.0
            return prev_le + (le - prev_le) * frac, False
        prev_le, prev_count = le, count
    return None


def _ms_shown(text: str, expected: tuple[float, bool] | None, what: str) -> list[str]:
    """A latency as the page shows it ("0.52", ">2500.0") against the expected seconds."""
    if expected is None:
        return [] if text.strip() == "—" else [f"{what}: {text!r}, expected —"]
    value, over = expected
    shown = numbers(text)
    ok = len(shown) == 1 and shown[0] == pytest.approx(value * 1000, abs=0.051)
    if not ok or text.strip().startswith(">") != over:
        return [f"{what}: {text!r}, expected {'>' if over else ''}{value * 1000:.3f} ms"]
    return []


def idle_platform_mismatches(shown: dict, m: dict) -> list[str]:
    """What the platform view shows after two polls of an idle server (no realtime request
    between them: percentiles and batch sizes since start) against the metrics ``m``."""
    bad: list[str] = []

    def expect(what: str, got: object, want: object) -> None:
        if got != want:
            bad.append(f"{what}: page {got!r}, metrics {want!r}")

    expect("predictions total", numbers(shown["total"]), [total(m, "nqp_predictions_total")])
    expect("latency caption", shown["latencySub"], "since start (idle now)")
    request = STAGES["request (queue + engine)"]
    parts = shown["latency"].removesuffix(" ms").split(" / ")
    expect("latency parts", len(parts), 3)
    for text, q in zip(parts, (0.5, 0.95, 0.99), strict=False):
        bad += _ms_shown(text, histogram_quantile(q, m, *request), f"request p{q * 100:g}")
    present = [
        label for label, (name, where) in STAGES.items() if samples(m, f"{name}_bucket", where)
    ]
    expect("stage rows", [row[0] for row in shown["stages"]], present)
    for label, *cells in shown["stages"]:
        name, where = STAGES[label]
        for text, q in zip(cells[:3], (0.5, 0.95, 0.99), strict=True):
            bad += _ms_shown(text, histogram_quantile(q, m, name, where), f"{label} p{q}")
        count = total(m, f"{name}_count", where)
        expect(f"{label} count", cells[3], f"{int(count):,} (since start)")
    n = total(m, "nqp_batch_size_count")
    mean = total(m, "nqp_batch_size_sum") / n
    expect("batch", shown["batch"], f"{mean:.1f} / —")
    expect("batch caption", shown["batchSub"], f"since start ({int(n):,} engine calls)")
    expect("queue depth", shown["queue"], str(round(total(m, "nqp_queue_depth"))))
    expect("websocket clients", numbers(shown["ws"]), [total(m, "nqp_websocket_clients")])
    errors = samples(m, "nqp_errors_total")
    expect("errors", numbers(shown["errors"]), [0, total(m, "nqp_errors_total")])
    expect(
        "error rows",
        sorted((kind, numbers(d + " " + t)) for kind, d, t in shown["errorRows"]),
        sorted((s["labels"]["kind"], [0, s["value"]]) for s in errors),
    )
    http = samples(m, "nqp_http_requests_total")
    expect(
        "HTTP 5xx and 429",
        shown["http"],
        f"HTTP 5xx {sum(s['value'] for s in http if s['labels']['status'][0] == '5'):g}"
        f" · 429 {sum(s['value'] for s in http if s['labels']['status'] == '429'):g}",
    )
    return bad


def ws_predictions(sockets: list[list[dict]], source: str, first_socket: int = 0) -> list[dict]:
    """Predictions of a source the page received on its WebSockets from ``first_socket`` on."""
    return [p for frames in sockets[first_socket:] for p in frames if p["source"] == source]


def stored_predictions(server: Server, h: dict, source: str) -> list[dict]:
    """Every stored prediction of a source, once the background writer has stored as many
    as the source has points."""
    points = httpx.get(server.url + f"/api/v1/sources/{source}", headers=h).json()["points"]
    deadline = time.monotonic() + 10
    while True:
        stored = httpx.get(
            server.url + "/api/v1/predictions",
            params={"source": source, "limit": 1000},
            headers=h,
        ).json()["predictions"]
        if len(stored) >= points or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert [p["sequence"] for p in stored] == list(range(1, points + 1))
    return stored


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
    sockets: list[list[dict]] = []  # per WebSocket of the page: the predictions it received

    def on_websocket(ws) -> None:
        frames: list[dict] = []
        sockets.append(frames)

        def on_frame(payload: str | bytes) -> None:
            msg = json.loads(payload)
            if msg.get("type") == "prediction":
                frames.append(msg["prediction"])

        ws.on("framereceived", on_frame)

    page.on("websocket", on_websocket)
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

    # history of the first source
    wait_chart_len(page, "chart-series", 40)
    page.wait_for_function(
        "() => document.getElementById('conn').dataset.state === 'live'", timeout=WAIT_MS
    )
    assert page.input_value("#source-select") == source

    # errors for the platform view: a batch job whose callback is refused (an error of kind
    # "callback") and requests of a rate-limited key (HTTP 429)
    job = httpx.post(
        server.url + "/api/v1/process/batch",
        json={
            "data_points": [{"source": "batch.callback", "data": [1.0, 2.0, 3.0]}],
            "callback_url": server.url + "/no-such-callback",
        },
        headers=h,
    )
    assert job.status_code == 202, job.text
    limited = httpx.post(
        server.url + "/api/v1/keys",
        json={"name": "limited", "role": "viewer", "rate_limit_per_s": 1},
        headers=h,
    ).json()["key"]
    statuses = [
        httpx.get(
            server.url + "/api/v1/status", headers={"Authorization": f"Bearer {limited}"}
        ).status_code
        for _ in range(5)
    ]
    assert statuses.count(429) >= 3, statuses
    deadline = time.monotonic() + 15
    while not (
        httpx.get(server.url + f"/api/v1/jobs/{job.json()['job_id']}", headers=h).json()[
            "callback_status"
        ]
        or ""
    ).startswith("failed"):
        assert time.monotonic() < deadline, "the batch job's callback did not fail"
        time.sleep(0.1)

    # live points of the market demo scenario, streamed by the scenario runner: the page
    # sees the new sources, shows one, and draws its points seconds after their timestamps
    with DemoFeed(server.url, admin, seed=0) as feed:
        deadline = time.monotonic() + WAIT_MS / 1000
        while not page.locator(f"#source-select option[value='{WATCHED}']").count():
            assert time.monotonic() < deadline, "the demo's sources are not offered"
            page.click("#source-refresh")
            page.wait_for_timeout(300)
        page.select_option("#source-select", WATCHED)
        seq, ages = 0, []
        for _ in range(3):  # three successive new points, each fresh when drawn
            seq, age = page.wait_for_function(
                _FRESH_POINT, arg=[feed.started_at - 1, seq, LIVE_MAX_AGE_S], timeout=WAIT_MS
            ).json_value()
            ages.append(age)
        print(f"\nlive points drawn {', '.join(f'{a:.2f}' for a in ages)} s after their time")
        markers = chart_len(page, "chart-series", 1) + chart_len(page, "chart-series", 2)
        assert markers > 0  # up/down triangles
        page.wait_for_function(
            "() => document.getElementById('c-hit').textContent.endsWith('%')", timeout=WAIT_MS
        )
        page.screenshot(path=shots / "02-live.png", full_page=True)

        # platform view while points flow: rates from counter deltas; the totals shown lie
        # between two reads of GET /api/v1/metrics around the poll the page shows
        page.click("#tab-platform")
        page.wait_for_function(
            "() => parseFloat(document.getElementById('m-rate').textContent) > 0",
            timeout=WAIT_MS,
        )
        before = get_metrics(server, h)
        page.wait_for_function(
            "(n) => parseInt(document.getElementById('m-total').textContent"
            ".replace(/[^0-9]/g, ''), 10) >= n",
            arg=total(before, "nqp_predictions_total"),
            timeout=WAIT_MS,
        )
        shown = page.evaluate(_PLATFORM)
        after = get_metrics(server, h)

        def between(value: float, name: str, where: dict | None = None) -> bool:
            return total(before, name, where) <= value <= total(after, name, where)

        assert between(numbers(shown["total"])[0], "nqp_predictions_total"), shown["total"]
        rate = float(shown["rate"])
        assert 0 < rate < 10 * DEMO_RATE, shown["rate"]
        assert shown["latencySub"] == "realtime requests, last poll"
        p50, p95, p99 = numbers(shown["latency"])
        assert 0 < p50 <= p95 <= p99 < 2500, shown["latency"]  # ms, within the buckets
        mean_batch, p95_batch = numbers(shown["batch"])
        assert 1 <= mean_batch <= p95_batch <= 1024, shown["batch"]
        assert numbers(shown["queue"])[0] >= 0
        assert between(numbers(shown["ws"])[0], "nqp_websocket_clients")
        assert numbers(shown["ws"])[0] == 1  # this page
        errors_last, errors_total = numbers(shown["errors"])
        assert between(errors_total, "nqp_errors_total"), shown["errors"]
        assert errors_total >= 1, shown["errors"]
        assert errors_last == 0, shown["errors"]  # nothing failed since the callback
        assert [row[::2] for row in shown["errorRows"]] == [["callback", "1"]]
        status5xx, status429 = map(
            int, re.fullmatch(r"HTTP 5xx (\d+) · 429 (\d+)", shown["http"]).groups()
        )
        assert between(status429, "nqp_http_requests_total", {"status": "429"})
        assert status429 >= 3, shown["http"]
        assert status5xx == 0, shown["http"]
        assert page.locator("#stage-table tbody tr").count() >= 2
        page.wait_for_selector(f"#sources-table tbody tr >> text={WATCHED}", timeout=WAIT_MS)
        assert "No validation run yet" in page.inner_text("#validation-summary")
        wait_chart_len(page, "chart-throughput", 1)
        drawn_rates = page.evaluate("() => document.getElementById('chart-throughput').data[0].y")
        assert all(math.isfinite(v) and v >= 0 for v in drawn_rates)
        assert max(drawn_rates) > 0
    feed.check()

    # platform view of the idle server: once two polls saw no new realtime request and no
    # stage at work (the storage writer finishes a little later), the page shows the
    # percentiles, batch sizes, queue, clients and errors since start exactly as
    # GET /api/v1/metrics gives them (read before and after: either read may match)
    stored = stored_predictions(server, h, WATCHED)
    before = get_metrics(server, h)
    page.wait_for_function(
        "(n) => document.getElementById('m-latency-sub').textContent === 'since start (idle now)'"
        " && [...document.querySelectorAll('#stage-table tbody tr td:last-child')]"
        ".every((td) => td.textContent.endsWith('(since start)'))"
        " && parseInt(document.getElementById('m-total').textContent.replace(/[^0-9]/g, ''), 10)"
        " === n",
        arg=total(before, "nqp_predictions_total"),
        timeout=WAIT_MS,
    )
    shown = page.evaluate(_PLATFORM)
    after = get_metrics(server, h)
    mismatches = [idle_platform_mismatches(shown, m) for m in (before, after)]
    assert not all(mismatches), (shown, mismatches)
    assert numbers(shown["errors"])[1] >= 1
    assert numbers(shown["http"])[-1] >= 3

    # the live charts hold the stored predictions of the source (most of them received
    # live through the WebSocket): values, confidence, pattern strengths of the latest
    # prediction, quantum energy and phase coherence; and the realised hit rate drawn is the
    # rule recomputed here
    page.click("#tab-live")
    wait_chart_holds(page, stored)
    page.wait_for_timeout(300)
    live = ws_predictions(sockets, WATCHED)
    assert len(live) >= 10
    by_seq = {p["sequence"]: p for p in stored}
    for p in live:  # what came live is what was stored
        q = by_seq[p["sequence"]]
        assert (p["value"], p["confidence"], p["timestamp"]) == pytest.approx(
            (q["value"], q["confidence"], q["timestamp"]), rel=1e-12
        )
    c = page.evaluate(_LIVE_CHARTS)
    seqs = [int(t.split()[1]) for t in c["labels"]]
    assert seqs == [p["sequence"] for p in stored]
    assert {p["sequence"] for p in live} <= set(seqs)
    assert c["value"] == pytest.approx([p["value"] for p in stored], rel=1e-12)
    assert c["time"] == pytest.approx([p["timestamp"] for p in stored], abs=2e-3)
    assert c["confidenceTime"] == c["time"]
    assert all(math.isfinite(v) and 0.5 <= v <= 1 for v in c["confidence"]), c["confidence"]
    assert c["confidence"] == pytest.approx([p["confidence"] for p in stored], rel=1e-12)
    latest_patterns = next(
        p["neuromorphic_results"]["patterns"]
        for p in reversed(stored)
        if (p.get("neuromorphic_results") or {}).get("patterns")
    )
    assert c["patternKinds"] == list(latest_patterns)
    assert c["patternStrengths"] == pytest.approx(list(latest_patterns.values()), rel=1e-12)
    assert all(0 <= v <= 1 for v in c["patternStrengths"])
    assert max(c["patternStrengths"]) > 0
    with_q = [
        p for p in stored if math.isfinite((p.get("quantum_results") or {}).get("energy", math.nan))
    ]
    assert len(with_q) >= len(stored) - 10 > 0
    assert c["quantumTime"] == pytest.approx([p["timestamp"] for p in with_q], abs=2e-3)
    assert c["energy"] == pytest.approx([p["quantum_results"]["energy"] for p in with_q])
    assert all(math.isfinite(v) for v in c["energy"])
    assert len(set(c["energy"])) > 1
    coherence = [p["quantum_results"]["phase_coherence"] for p in with_q]
    assert c["coherence"] == pytest.approx(coherence, rel=1e-12)
    assert all(0 <= v <= 1 for v in c["coherence"])
    assert c["coherenceAxis"] == [0, 1]
    expected_hits = realised_hit_rate(stored)
    assert len(expected_hits) > 0
    assert c["hit"] == pytest.approx(expected_hits, abs=1e-12)
    assert numbers(c["cardValue"]) == pytest.approx([stored[-1]["value"]], abs=5.1e-5)
    assert c["cardTime"].startswith(f"seq {stored[-1]['sequence']} ·")

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

    # the server restarts: the page reconnects by itself and receives new points of the
    # demo, which streams again from just after the restart; points sent while the page is
    # still reconnecting arrive by the WebSocket or by the history reload after the
    # reconnect, either way once
    page.click("#tab-live")
    server.stop()
    page.wait_for_function(
        "() => document.getElementById('conn').dataset.state !== 'live'", timeout=WAIT_MS
    )
    old_sockets = len(sockets)
    server.start()  # same port, same data
    with DemoFeed(server.url, admin, seed=1) as feed:
        page.wait_for_function(
            "() => document.getElementById('conn').dataset.state === 'live'", timeout=30_000
        )
        deadline = time.monotonic() + WAIT_MS / 1000
        while len(ws_predictions(sockets, WATCHED, old_sockets)) < 5:
            assert time.monotonic() < deadline, "no live point after the restart"
            page.wait_for_timeout(100)
    feed.check()
    stored = stored_predictions(server, h, WATCHED)
    wait_chart_holds(page, stored)
    page.wait_for_timeout(300)
    labels = page.evaluate("() => document.getElementById('chart-series').data[0].text")
    assert [int(t.split()[1]) for t in labels] == [p["sequence"] for p in stored]  # no gap

    # optimisation: the prefilled example solves, and the page shows what the API answers
    # for the very request it sent; a bad budget is shown next to its field
    page.click("#tab-optimize")
    with page.expect_request(
        lambda r: r.url == server.url + "/api/v1/optimize/portfolio" and r.method == "POST"
    ) as request_info:
        page.click("#pf-submit")
    body = request_info.value.post_data_json
    assert (body["mu"], body["budget"], body["method"]) == (
        [0.12, 0.10, 0.07, 0.03, 0.15, 0.09],
        3,
        "anneal",
    )
    page.wait_for_selector("#pf-selected .chip", timeout=WAIT_MS)
    wait_chart_len(page, "chart-convergence", 2)
    facts = page.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('#pf-facts dt')]"
        ".map((dt) => [dt.textContent, dt.nextElementSibling.textContent]))"
    )
    chips = page.locator("#pf-selected .chip").all_inner_texts()
    convergence = page.evaluate("() => document.getElementById('chart-convergence').data[0].y")
    answer = httpx.post(server.url + "/api/v1/optimize/portfolio", json=body, headers=h)
    assert answer.status_code == 200, answer.text
    a = answer.json()
    assert numbers(facts["energy"]) == pytest.approx([a["energy"]], abs=5.1e-7)
    assert len(facts["energy"].split(".")[1]) == 6  # shown to 6 decimals
    for fact, key in (("expected return", "expected_return"), ("risk (variance)", "risk")):
        assert numbers(facts[fact]) == pytest.approx([a[key]], abs=5.1e-5), fact
    assert numbers(facts["objective"]) == pytest.approx([a["objective"]], abs=5.1e-5)
    names = [s.strip() for s in page.input_value("#pf-assets").split(",")]
    assert chips == [names[i] for i in a["selected"]]
    assert len(chips) == 3
    met = ", met" if a["budget_satisfied"] else ", NOT met"
    assert facts["selected"] == f"3 of {a['assets']} (budget {a['budget']}{met})"
    assert convergence == pytest.approx(a["trace"]["energy"])
    assert convergence[-1] == pytest.approx(a["energy"], abs=1e-9)
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
    # (401), the over-budget (422) and the viewer's (403) portfolio
    expected = {("/api/v1/optimize/portfolio", 422), ("/api/v1/optimize/portfolio", 403)}
    assert {f for f in failed if f[1] != 401} <= expected, failed
    assert ("/api/v1/status", 401) in failed
