"""Walk-forward validation runs over HTTP, and their reports.

- ``POST /api/v1/validation/runs`` (developer): ``{dataset: name | csv: {values,
  timestamps?, target_channel?}, horizon?, points?, seed?, variants?}`` → 202 ``{id,
  status}``. The series is built and checked before answering (bad input is a 422 naming
  the field, an unknown dataset lists the valid ones); the run itself
  (:func:`nqp.validation.walk_forward`, with its own platform on the gateway's engine
  settings and ``seed``) goes on in a worker thread owned by the runtime. At most
  :data:`MAX_RUNS` run at once per process; beyond that a 429 with ``Retry-After``.
- ``GET /api/v1/validation/runs/{id}`` (any role): status and, once succeeded, the
  headline figures (:func:`nqp.validation.summarise`); finished answers are cached in
  ``runtime.cache``. ``?wait=<s>`` (at most 30) answers when the run ends instead of at
  once (long polling, :mod:`nqp.service.waits`).
- ``GET /api/v1/validation/runs/{id}/report``: the HTML report (409 until the run has
  succeeded). Its plots are inlined as ``data:`` URIs, so the page needs no further
  authenticated requests. The report folder is ``runtime.data_dir / "reports" / <id>``;
  a gateway that lacks it (another replica, a wiped disk) redraws it from the stored
  result, without the per-prediction plots.

Runs belong to the tenant of the key that made them; other tenants get 404.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import re
import weakref
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import orjson
from fastapi import APIRouter, Query, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field, StrictFloat, StrictInt

from nqp import store
from nqp.config import Settings
from nqp.datasets import Dataset, available_datasets, load_dataset
from nqp.exceptions import NQPError
from nqp.service.api.deps import CurrentKey, DeveloperKey, RuntimeDep, SessionDep, WaitQuery
from nqp.service.api.routes.optimize import AdmissionGate
from nqp.service.errors import ERROR_RESPONSES, ApiError
from nqp.service.runtime import Runtime
from nqp.validation import VARIANTS, summarise, walk_forward, write_report

# errors of the HTML route are still JSON ({error: ...}), whatever its success media type
ERROR_SCHEMA_REF = {"$ref": "#/components/schemas/ErrorBody"}

__all__ = [
    "GENERATED_DATASETS",
    "MAX_POINTS",
    "MAX_RUNS",
    "CsvSeries",
    "ValidationRunCreate",
    "router",
    "validation_gate",
]

log = logging.getLogger("nqp.service")

router = APIRouter(prefix="/api/v1/validation", tags=["validation"])

#: Longest series a run may replay.
MAX_POINTS = 5000
#: Validation runs at once per process (no queue: a 429 beyond).
MAX_RUNS = 2
#: Datasets generated on demand (``points`` is their length); the others are packaged
#: series, of which ``points`` keeps the first values.
GENERATED_DATASETS = ("mackey_glass", "lorenz", "market", "iot", "maintenance")
#: Lifetime of a cached finished run, seconds.
CACHE_TTL_S = 300.0

_GATES: weakref.WeakKeyDictionary[Runtime, AdmissionGate] = weakref.WeakKeyDictionary()


def validation_gate(runtime: Runtime) -> AdmissionGate:
    """The process's gate of validation runs (``MAX_RUNS`` at once, none waiting)."""
    gate = _GATES.get(runtime)
    if gate is None:
        gate = _GATES[runtime] = AdmissionGate(MAX_RUNS, 0)
    return gate


class CsvSeries(BaseModel):
    """A series given inline: numbers (one channel) or rows of numbers (channels)."""

    model_config = {"extra": "forbid"}

    values: list[Any] = Field(
        min_length=1, max_length=MAX_POINTS, description="Numbers, or equal-length rows."
    )
    timestamps: list[StrictFloat] | None = Field(
        None, description="Seconds, one per value, non-decreasing (default: 0, 1, 2, ...)."
    )
    target_channel: StrictInt = Field(0, ge=0, description="Column predicted.")
    name: str = Field("csv", min_length=1, max_length=100)


class ValidationRunCreate(BaseModel):
    """A walk-forward validation request: a dataset by name, or a series inline."""

    model_config = {"extra": "forbid"}

    dataset: str | None = Field(None, max_length=100, description="A registered dataset.")
    csv: CsvSeries | None = None
    horizon: StrictInt = Field(1, ge=1, description="Steps ahead predicted.")
    points: StrictInt | None = Field(
        None,
        ge=50,
        le=MAX_POINTS,
        description="Generated datasets: length (default 2000); packaged: first N values.",
    )
    seed: StrictInt | None = Field(
        None, ge=0, le=2**63 - 1, description="Engine seed (default: the server's)."
    )
    variants: list[Literal["both", "neuromorphic", "quantum", "observation"]] | None = Field(
        None, min_length=1, description="Ablations to run (default: all; 'both' always)."
    )


# --------------------------------------------------------------------------- building


def _csv_dataset(csv: CsvSeries, max_channels: int) -> Dataset:
    rows = csv.values
    two_d = isinstance(rows[0], list)
    width = len(rows[0]) if two_d else None
    for i, v in enumerate(rows):
        where = f"csv.values[{i}]"
        if two_d:
            if not isinstance(v, list) or len(v) != width or width == 0:
                raise ApiError(
                    422,
                    f"{where} must be a row of {width} numbers like csv.values[0].",
                    field=where,
                )
            cells = v
        else:
            cells = [v]
        for c in cells:
            if isinstance(c, bool) or not isinstance(c, int | float) or not math.isfinite(c):
                raise ApiError(422, f"{where} must hold finite numbers; got {v!r}.", field=where)
    values = np.asarray(rows, dtype=np.float64)
    channels = 1 if values.ndim == 1 else values.shape[1]
    if channels > max_channels:
        raise ApiError(
            422, f"At most {max_channels} channels; got {channels}.", field="csv.values[0]"
        )
    if csv.target_channel >= channels:
        raise ApiError(
            422,
            f"target_channel must be below the {channels} channel(s).",
            field="csv.target_channel",
        )
    timestamps = None
    if csv.timestamps is not None:
        if len(csv.timestamps) != len(rows):
            raise ApiError(
                422,
                f"csv.timestamps has {len(csv.timestamps)} entries, csv.values {len(rows)}.",
                field="csv.timestamps",
            )
        timestamps = np.asarray(csv.timestamps, dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(timestamps))
        if bad.size:
            where = f"csv.timestamps[{bad[0]}]"
            raise ApiError(422, f"{where} must be finite.", field=where)
        back = np.flatnonzero(np.diff(timestamps) < 0)
        if back.size:
            where = f"csv.timestamps[{back[0] + 1}]"
            raise ApiError(422, f"{where} is earlier than the one before.", field=where)
    return Dataset(
        name=csv.name,
        values=values,
        timestamps=timestamps,
        target_channel=csv.target_channel,
        regimes=None,
        regime_names=(),
        anomalies=None,
        description=f"Series posted to the API ({len(rows)} points, {channels} channel(s)).",
    )


def _named_dataset(name: str, points: int | None) -> Dataset:
    options = available_datasets()
    if name not in options:
        raise ApiError(
            422, f"Unknown dataset {name!r}; valid options: {', '.join(options)}.", field="dataset"
        )
    if name in GENERATED_DATASETS:
        return load_dataset(name, n_samples=points if points is not None else 2000)
    ds = load_dataset(name)
    n = len(ds.values)
    if points is None and n > MAX_POINTS:
        raise ApiError(
            422,
            f"{name!r} has {n} points, more than {MAX_POINTS}; set 'points' to use the first N.",
            field="points",
        )
    if points is None or points >= n:
        return ds

    def head(a: Any) -> Any:
        return None if a is None else a[:points]

    return Dataset(
        name=ds.name,
        values=ds.values[:points],
        timestamps=head(ds.timestamps),
        target_channel=ds.target_channel,
        regimes=head(ds.regimes),
        regime_names=ds.regime_names,
        anomalies=head(ds.anomalies),
        description=f"{ds.description} First {points} points.",
        channel_names=ds.channel_names,
    )


def _build(body: ValidationRunCreate, settings: Settings) -> Dataset:
    """The series of a request (runs in a worker thread: generation takes a moment)."""
    if body.csv is not None:
        if body.points is not None:
            raise ApiError(422, "'points' applies to named datasets, not to csv.", field="points")
        ds = _csv_dataset(body.csv, settings.engine.max_channels)
        field = "csv.values"
    else:
        assert body.dataset is not None
        ds = _named_dataset(body.dataset, body.points)
        field = "points" if body.points is not None else "dataset"
    n = len(ds.values)
    needed = settings.engine.warmup + 2 * body.horizon + 11
    if n < needed:
        raise ApiError(
            422,
            f"The series has {n} points; horizon {body.horizon} with warm-up "
            f"{settings.engine.warmup} needs at least {needed}.",
            field=field,
        )
    return ds


def _run(
    dataset: Dataset, settings: Settings, horizon: int, variants: list[str], out: Path
) -> dict[str, Any]:
    """Replay, score and write the report (worker thread); the result dict."""
    run = walk_forward(dataset, settings=settings, horizon=horizon, variants=variants)
    write_report(run.result, out, predictions=run.predictions, baselines=run.baselines)
    return run.result


# --------------------------------------------------------------------------- views


def _cache_key(tenant_id: str, run_id: str) -> str:
    return f"validation:{tenant_id}:{run_id}"


def _report_path(run_id: str) -> str:
    return f"{router.prefix}/runs/{run_id}/report"


def _view(row: store.ValidationRun) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row.id,
        "status": row.status,
        "created_at": row.created_at.isoformat(),
        "finished_at": None if row.finished_at is None else row.finished_at.isoformat(),
        "request": row.request,
        "error": row.error,
        "summary": None,
        "report": None,
    }
    if row.status == "succeeded" and row.result is not None:
        out["summary"] = summarise(row.result)
        out["report"] = _report_path(row.id)
    return out


async def _execute(
    runtime: Runtime,
    tenant_id: str,
    run_id: str,
    dataset: Dataset,
    settings: Settings,
    horizon: int,
    variants: list[str],
) -> None:
    """The background part of a run: status, replay, report, result, cache."""
    gate = validation_gate(runtime)
    status, result, error = "failed", None, None
    try:
        async with runtime.sessions() as session:
            await store.update_validation_run(
                session, tenant_id=tenant_id, run_id=run_id, status="running"
            )
            await session.commit()
        out = runtime.data_dir / "reports" / run_id
        result = await asyncio.to_thread(_run, dataset, settings, horizon, variants, out)
        status = "succeeded"
    except asyncio.CancelledError:
        error = "Interrupted: the server shut down before the run finished."
        raise
    except NQPError as exc:
        error = str(exc)
    except Exception as exc:  # keep the server up; the run records the failure
        runtime.metrics.errors.labels("validation_run").inc()
        log.exception("validation run %s failed", run_id)
        error = f"Internal error ({type(exc).__name__})."
    finally:
        gate.leave()
        try:
            async with runtime.sessions() as session:
                row = await store.update_validation_run(
                    session,
                    tenant_id=tenant_id,
                    run_id=run_id,
                    status=status,
                    result=result,
                    error=error,
                )
                view = None if row is None else _view(row)
                await session.commit()
            if view is not None:
                await runtime.cache.set(
                    _cache_key(tenant_id, run_id), orjson.dumps(view), ttl_s=CACHE_TTL_S
                )
        except Exception:  # the database may be gone at shutdown
            runtime.metrics.errors.labels("validation_store").inc()
            log.exception("storing validation run %s failed", run_id)
        runtime.ends.announce()  # requests waiting for this run read it again


# --------------------------------------------------------------------------- routes


@router.post("/runs", status_code=202)
async def create_run(
    body: ValidationRunCreate, principal: DeveloperKey, runtime: RuntimeDep, session: SessionDep
) -> dict[str, Any]:
    """Start a walk-forward validation run; ``GET /runs/{id}?wait=30`` for the result."""
    if (body.dataset is None) == (body.csv is None):
        raise ApiError(422, "Give exactly one of 'dataset' (a name) or 'csv'.", field="dataset")
    seed = runtime.settings.seed if body.seed is None else body.seed
    settings = runtime.settings.model_copy(update={"seed": seed})
    if body.horizon > settings.engine.max_horizon:
        raise ApiError(
            422,
            f"horizon must be at most max_horizon={settings.engine.max_horizon}.",
            field="horizon",
        )
    dataset = await asyncio.to_thread(_build, body, settings)
    variants = list(dict.fromkeys(body.variants or VARIANTS))
    gate = validation_gate(runtime)
    if not gate.try_enter():
        raise ApiError(
            429,
            f"{MAX_RUNS} validation runs are in progress; retry later.",
            headers={"Retry-After": "10"},
        )
    try:
        request = {
            "dataset": body.dataset,
            "csv": None
            if body.csv is None
            else {"name": body.csv.name, "target_channel": body.csv.target_channel},
            "points": len(dataset.values),
            "horizon": body.horizon,
            "seed": seed,
            "variants": variants,
        }
        row = await store.create_validation_run(
            session, tenant_id=principal.tenant_id, request=request
        )
        run_id = row.id
        await session.commit()
        runtime.spawn(
            _execute(
                runtime, principal.tenant_id, run_id, dataset, settings, body.horizon, variants
            ),
            name=f"nqp-validation-{run_id}",
            lease=("run", principal.tenant_id, run_id),
        )
    except BaseException:
        gate.leave()
        raise
    return {"id": run_id, "status": "queued", "url": f"{router.prefix}/runs/{run_id}"}


async def _get_row(session: Any, tenant_id: str, run_id: str) -> store.ValidationRun:
    row = await store.get_validation_run(session, tenant_id=tenant_id, run_id=run_id)
    if row is None:
        raise ApiError(404, f"No validation run {run_id!r}.")
    return row


@router.get("/runs")
async def list_runs(
    principal: CurrentKey,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100, description="Most recent runs returned.")] = 20,
) -> dict[str, list[dict[str, Any]]]:
    """The tenant's most recent runs, newest first (each as ``GET /runs/{id}`` shows it)."""
    rows = await store.list_validation_runs(session, tenant_id=principal.tenant_id, limit=limit)
    return {"runs": [_view(row) for row in rows]}


@router.get("/runs/{run_id}")
async def get_run(
    run_id: str,
    principal: CurrentKey,
    runtime: RuntimeDep,
    session: SessionDep,
    wait: WaitQuery = 0.0,
) -> Response:
    """Status of a run; once succeeded, its ``summary`` and ``report`` link.

    With ``wait``, a run that has not finished is answered when it does or when ``wait``
    seconds have passed, whichever comes first, with its status then (at once when the
    server starts shutting down).
    """
    key = _cache_key(principal.tenant_id, run_id)
    cached = await runtime.cache.get(key)
    if cached is not None:
        runtime.metrics.cache.labels("validation", "hit").inc()
        return Response(cached, media_type="application/json")
    row = await runtime.ends.wait_until(
        lambda: _get_row(session, principal.tenant_id, run_id),
        lambda row: row.status in store.FINAL_STATUSES,
        wait,
        release=session.rollback,  # the connection goes back to the pool while waiting
    )
    body = orjson.dumps(_view(row))
    if row.status in store.FINAL_STATUSES:
        runtime.metrics.cache.labels("validation", "miss").inc()
        await runtime.cache.set(key, body, ttl_s=CACHE_TTL_S)
    return Response(body, media_type="application/json")


_IMG = re.compile(r'<img src="([A-Za-z0-9_.-]+\.png)"')


def _report_html(folder: Path, result: dict[str, Any]) -> str:
    """``index.html`` of the run's report with its PNGs inlined (redrawn if missing)."""
    index = folder / "index.html"
    if not index.is_file():
        write_report(result, folder)
    text = index.read_text(encoding="utf-8")

    def inline(m: re.Match[str]) -> str:
        png = folder / m.group(1)
        if not png.is_file():
            return m.group(0)
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        return f'<img src="data:image/png;base64,{data}"'

    return _IMG.sub(inline, text)


@router.get(
    "/runs/{run_id}/report",
    response_class=HTMLResponse,
    responses={
        status: {**spec, "content": {"application/json": {"schema": ERROR_SCHEMA_REF}}}
        for status, spec in ERROR_RESPONSES.items()
    },
)
async def get_report(
    run_id: str, principal: CurrentKey, runtime: RuntimeDep, session: SessionDep
) -> HTMLResponse:
    """The run's HTML report, self-contained (409 until the run has succeeded)."""
    row = await _get_row(session, principal.tenant_id, run_id)
    if row.status != "succeeded" or row.result is None:
        raise ApiError(409, f"The run is {row.status}; its report exists once it succeeds.")
    folder = runtime.data_dir / "reports" / row.id
    text = await asyncio.to_thread(_report_html, folder, row.result)
    return HTMLResponse(text)
