"""The worker's HTTP port: ``/metrics`` for Prometheus, ``/healthz`` and ``/readyz`` for probes.

prometheus_client's own server answers its metrics on every path, so a probe on it can
only say "the process is up". This one answers each path for what it is:

* ``GET /metrics``: the registry in the Prometheus text format;
* ``GET /healthz``: 200 while ``alive()`` returns ``None`` (liveness: the consume loop is
  turning), else 503 with the reason;
* ``GET /readyz``: 200 while ``ready()`` returns ``None`` (set up, not draining, alive),
  else 503 with the reason;
* anything else: 404.

Bodies of the probes are JSON: ``{"status": "ok"}`` or
``{"status": "unavailable", "reason": "..."}``. The server runs on a daemon thread, so the
checks must be cheap and thread-safe (reading a few attributes is).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

__all__ = ["Check", "HealthServer"]

Check = Callable[[], str | None]
"""A probe: ``None`` when healthy, else the reason it is not (shown in the 503 body)."""


class HealthServer:
    """Serve metrics and probes on ``host:port`` from a daemon thread until :meth:`close`.

    Parameters
    ----------
    port : int
        TCP port; 0 picks a free one (read :attr:`port` after construction).
    registry : CollectorRegistry
        What ``/metrics`` exports.
    alive, ready : Check
        The ``/healthz`` and ``/readyz`` conditions.
    host : str, default="0.0.0.0"
        Interface to bind (every interface, as Kubernetes probes and Prometheus need).
    """

    def __init__(
        self,
        port: int,
        registry: CollectorRegistry,
        *,
        alive: Check,
        ready: Check,
        host: str = "0.0.0.0",
    ) -> None:
        probes = {"/healthz": alive, "/readyz": ready}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(200, CONTENT_TYPE_LATEST, generate_latest(registry))
                elif path in probes:
                    reason = probes[path]()
                    body = {"status": "ok"} if reason is None else {"status": "unavailable"}
                    if reason is not None:
                        body["reason"] = reason
                    status = 200 if reason is None else 503
                    self._send(status, "application/json", json.dumps(body).encode())
                else:
                    self._send(404, "application/json", b'{"status": "not found"}')

            def _send(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # probes every few seconds would flood the worker's log

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="nqp-health", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
