"""Prometheus metrics of one app instance (its own registry, so tests can build many apps)."""

from __future__ import annotations

import contextlib
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """Counters, gauges and histograms exported at ``/metrics``.

    Hot paths take labelled children through :meth:`child`, which looks each one up once:
    ``labels()`` validates and hashes its values on every call, which cost more than the
    update itself at thousands of requests a second.
    """

    def __init__(self) -> None:
        self._children: dict[tuple[Any, ...], Any] = {}
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "nqp_http_requests", "HTTP requests", ["route", "method", "status"], registry=r
        )
        self.latency = Histogram(
            "nqp_http_request_seconds",
            "HTTP request latency",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.stage = Histogram(
            "nqp_stage_seconds",
            "Latency per processing stage (queue wait, engine, storage)",
            ["stage"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "nqp_batch_size",
            "Items per engine call",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
            registry=r,
        )
        self.queue_depth = Gauge("nqp_queue_depth", "Realtime requests waiting", registry=r)
        self.predictions = Counter("nqp_predictions", "Predictions made", ["direction"], registry=r)
        self.cache = Counter("nqp_cache", "Cache lookups", ["level", "result"], registry=r)
        self.hit_rate = Gauge(
            "nqp_source_rolling_hit_rate",
            "Exponentially weighted realised hit rate per source",
            ["tenant", "source"],
            registry=r,
        )
        self.errors = Counter("nqp_errors", "Errors by kind", ["kind"], registry=r)
        self.ws_clients = Gauge("nqp_websocket_clients", "Connected WebSocket clients", registry=r)

    def child(self, metric: Any, *values: str) -> Any:
        """``metric.labels(*values)``, looked up once and kept."""
        key = (id(metric), *values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found

    def remove(self, metric: Any, *values: str) -> None:
        """Drop the child ``values`` of ``metric`` (absent: nothing to do)."""
        self._children.pop((id(metric), *values), None)
        with contextlib.suppress(KeyError):
            metric.remove(*values)

    def render(self) -> bytes:
        """Prometheus text exposition format."""
        return generate_latest(self.registry)
