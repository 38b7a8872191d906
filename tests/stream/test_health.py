"""The worker's metrics-and-probes server: each path answers for what it is."""

from __future__ import annotations

import httpx
from prometheus_client import CollectorRegistry, Gauge

from nqp.stream.health import HealthServer


def test_metrics_probes_and_unknown_paths():
    registry = CollectorRegistry()
    Gauge("nqp_demo_up", "demo", registry=registry).set(1)
    state = {"alive": None, "ready": "starting"}
    server = HealthServer(
        0, registry, alive=lambda: state["alive"], ready=lambda: state["ready"], host="127.0.0.1"
    )
    base = f"http://127.0.0.1:{server.port}"
    try:
        r = httpx.get(base + "/metrics")
        assert r.status_code == 200
        assert "nqp_demo_up 1.0" in r.text
        assert r.headers["content-type"].startswith("text/plain")
        assert httpx.get(base + "/healthz").json() == {"status": "ok"}
        r = httpx.get(base + "/readyz")
        assert r.status_code == 503
        assert r.json() == {"status": "unavailable", "reason": "starting"}
        state["ready"] = None
        assert httpx.get(base + "/readyz?verbose=1").status_code == 200
        state["alive"] = "the consume loop has not turned for 61 s"
        r = httpx.get(base + "/healthz")
        assert r.status_code == 503
        assert r.json()["reason"] == state["alive"]
        assert httpx.get(base + "/").status_code == 404
        assert httpx.get(base + "/metricsx").status_code == 404
    finally:
        server.close()
    try:
        httpx.get(base + "/healthz", timeout=1)
    except httpx.TransportError:
        pass
    else:
        raise AssertionError("the server still answers after close()")
