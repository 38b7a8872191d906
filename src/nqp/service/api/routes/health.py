"""Liveness, readiness, status and metrics."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from nqp import __version__
from nqp.service.api.deps import CurrentKey, RuntimeDep
from nqp.service.errors import ApiError

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(runtime: RuntimeDep) -> dict[str, Any]:
    """Readiness: started, database reachable, accepting work (503 otherwise)."""
    if not runtime.ready:
        raise ApiError(503, "Not ready: starting or draining.", headers={"Retry-After": "1"})
    if not runtime.platform.alive:
        raise ApiError(503, "Not ready: the engine process has stopped.")
    try:
        async with runtime.sessions() as session:
            from sqlalchemy import text

            await session.execute(text("SELECT 1"))
    except Exception as exc:  # any database failure means "not ready"
        raise ApiError(503, f"Database unreachable: {type(exc).__name__}.") from None
    return {"status": "ready"}


@router.get("/api/v1/status")
async def status(runtime: RuntimeDep, principal: CurrentKey) -> dict[str, Any]:
    """Version, uptime and the caller's view of the platform."""
    prefix = f"{principal.tenant_id}/"
    names = await runtime.live_sources()
    return {
        "version": __version__,
        "uptime_s": time.time() - runtime.started_at,
        "ready": runtime.ready,
        "sources_in_memory": sum(1 for s in names if s.startswith(prefix)),
        "queue_depth": runtime.batcher.queue_depth,
        "store_backlog": runtime.store_backlog,
        "tenant": principal.tenant_id,
        "role": principal.role.value,
    }


@router.get("/api/v1/metrics")
async def metrics_json(runtime: RuntimeDep, principal: CurrentKey) -> dict[str, Any]:
    """The Prometheus metrics as JSON: {name: [{labels, value}]} (histograms as buckets)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for family in runtime.metrics.registry.collect():
        for sample in family.samples:
            labels = dict(sample.labels)
            if labels.get("tenant") not in (None, principal.tenant_id):
                continue  # per-source gauges of other tenants are not theirs to see
            out.setdefault(sample.name, []).append({"labels": labels, "value": sample.value})
    return out


@router.get("/metrics", include_in_schema=False)
async def metrics_prometheus(runtime: RuntimeDep) -> Response:
    """Prometheus text exposition (scraped inside the deployment; no auth)."""
    return Response(runtime.metrics.render(), media_type="text/plain; version=0.0.4")
