"""The runner against a real server over HTTP: every point is predicted, nothing is lost."""

from __future__ import annotations

import math
import time

import httpx
import pytest

from nqp.exceptions import InvalidParameterError
from nqp.scenarios import format_summary, run_scenario, run_scenarios

from .conftest import make_key

TICKERS = ("ACME", "BOLT", "CRUX", "DYNA", "EPIC")


def _server_points(server, key: str, source: str) -> int:
    """Points the server has processed for a source (the tests share one tenant)."""
    r = httpx.get(
        f"{server.url}/api/v1/sources/{source}", headers={"Authorization": f"Bearer {key}"}
    )
    if r.status_code == 404:
        return 0
    assert r.status_code == 200, r.text
    return r.json()["points"]


def _stored_sequences(server, key: str, source: str, expected: int) -> list[int]:
    """Stored predictions of a source (the server writes them in batches: poll briefly)."""
    deadline = time.monotonic() + 20
    while True:
        r = httpx.get(
            f"{server.url}/api/v1/predictions",
            params={"source": source, "limit": 10_000},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert r.status_code == 200, r.text
        seqs = [p["sequence"] for p in r.json()["predictions"]]
        if len(seqs) >= expected or time.monotonic() > deadline:
            return seqs
        time.sleep(0.2)


def _consistent(s) -> None:
    assert s.points_sent + s.points_lost <= s.points_generated
    assert s.predictions_received == s.requests
    assert s.requests <= s.points_sent
    assert s.achieved_rate * s.elapsed_s == pytest.approx(s.points_sent)
    assert s.latency_p50_ms <= s.latency_p95_ms
    h = s.hits
    assert 0 <= h.hits <= h.calls <= s.predictions_received
    if h.calls:
        assert h.hit_rate == pytest.approx(h.hits / h.calls)


def test_market_every_point_sent_is_predicted_and_stored(server):
    key = make_key(server)
    before = {t: _server_points(server, key, f"market.{t}") for t in TICKERS}
    s = run_scenario(
        "market", server.url, key, rate=100.0, duration=3.0, seed=1, events=[(1.0, "vol_spike")]
    )
    _consistent(s)
    # 3 s at 100 points/s over 5 tickers: 60 steps of 5 points, all acknowledged
    assert s.points_generated == 300
    assert (s.points_sent, s.points_lost, s.errors, s.sequence_mismatches) == (300, 0, 0, 0)
    assert s.sources == 5
    assert len(s.events) == 1
    assert s.events[0][1] == "vol_spike"
    assert 0 < s.events[0][0] < 60
    for ticker in TICKERS:
        source = f"market.{ticker}"
        n0 = before[ticker]
        assert _server_points(server, key, source) == n0 + 60
        stored = _stored_sequences(server, key, source, n0 + 60)
        assert stored[n0:] == list(range(n0 + 1, n0 + 61))
    assert s.hits.calls > 0  # warm-up of 5 outcomes: most predictions are scored
    text = format_summary(s)
    assert "points sent 300 of 300 produced (0 lost)" in text
    assert "vol_spike at step" in text


def test_a_rate_limited_key_gets_429s_and_loses_nothing(server):
    key = make_key(server, rate_limit_per_s=4)
    reader = make_key(server)  # the limited key would be refused for the checks too
    before = {t: _server_points(server, reader, f"market.{t}") for t in TICKERS}
    s = run_scenario("market", server.url, key, rate=50.0, duration=2.0, seed=2, concurrency=4)
    _consistent(s)
    assert s.retries > 0  # the server said 429 with Retry-After, and the runner waited
    assert (s.points_generated, s.points_sent, s.points_lost, s.errors) == (100, 100, 0, 0)
    assert s.sequence_mismatches == 0
    assert s.requests < s.points_sent  # waiting points went together in later requests
    for ticker in TICKERS:
        assert _server_points(server, reader, f"market.{ticker}") == before[ticker] + 20


def test_iot_maintenance_and_portfolio_together(server):
    key = make_key(server)
    # a machine of that name from an earlier session: the new run must start afresh
    stale = httpx.post(
        f"{server.url}/api/v1/process/realtime",
        json={"source": "maintenance.m1.run1", "data": [[9.0, 90.0, 19.0]] * 7},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert stale.status_code == 200, stale.text
    control_before = _server_points(server, key, "maintenance.control")
    out = run_scenarios(
        ["iot", "maintenance", "portfolio"],
        base_url=server.url,
        api_key=key,
        rate={"iot": 60.0, "maintenance": 40.0},
        duration=3.0,
        seed=3,
        portfolio_period_s=1.0,
    )
    assert list(out) == ["iot", "maintenance", "portfolio"]
    iot, maint, port = out["iot"], out["maintenance"], out["portfolio"]
    for s in (iot, maint):
        _consistent(s)
        assert s.points_lost == s.errors == s.sequence_mismatches == 0
        assert s.points_sent == s.points_generated
    assert iot.points_generated == 180  # 30 steps of 6 sensors
    assert maint.points_generated == 120  # 30 steps of 3 machines and the control
    a = iot.anomalies
    assert a.labelled_points + a.normal_points == iot.predictions_received
    for value in (a.mean_score_labelled, a.mean_score_normal):
        assert math.isnan(value) or 0.0 <= value <= 1.0
    m = maint.maintenance
    assert {r.source for r in m.runs} == {f"maintenance.m{i}.run1" for i in (1, 2, 3)}
    for source in ("maintenance.m1.run1", "maintenance.m3.run1"):
        assert _server_points(server, key, source) == 30  # the stale 7 points are gone
    assert _server_points(server, key, "maintenance.control") == control_before + 30
    assert all(r.status == "running" or r.alarm_step is not None for r in m.runs)
    assert 0 < m.control_points <= maint.predictions_received
    p = port.portfolio
    assert port.errors == 0
    assert 1 <= p.optimisations == port.requests
    assert len(p.last_selected) == 2  # budget 2 of the five tickers
    text = "\n".join(format_summary(s) for s in out.values())
    assert "anomaly score: mean" in text
    assert "healthy control machine" in text
    assert "re-optimisations" in text


def test_a_bad_key_is_counted_as_errors_and_lost_points(server):
    s = run_scenario("market", server.url, "nqp_not-a-key", rate=20.0, duration=1.0)
    assert s.points_sent == 0
    assert s.points_lost == s.points_generated == 20
    assert s.errors > 0
    assert s.error_samples[0].startswith("HTTP 401")


def test_bad_arguments_are_refused_before_anything_is_sent():
    with pytest.raises(InvalidParameterError, match="names"):
        run_scenarios(["stocks"], base_url="http://127.0.0.1:9", api_key="k")
    with pytest.raises(InvalidParameterError, match="Market events"):
        run_scenarios(
            ["iot"], base_url="http://127.0.0.1:9", api_key="k", events=[(1.0, "reversal")]
        )
    with pytest.raises(InvalidParameterError, match="rate"):
        run_scenarios(["iot"], base_url="http://127.0.0.1:9", api_key="k", rate=0.0)
    with pytest.raises(InvalidParameterError, match="'concurrency' parameter"):
        run_scenarios(["iot"], base_url="http://127.0.0.1:9", api_key="k", concurrency=0)
    with pytest.raises(InvalidParameterError, match="'duration' parameter"):
        run_scenarios(["iot"], base_url="http://127.0.0.1:9", api_key="k", duration=-1)
