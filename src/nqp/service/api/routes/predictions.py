"""Stored predictions: query by source and time range, paginated; CSV export."""

from __future__ import annotations

import csv
import io
from typing import Any, Literal

from fastapi import APIRouter, Query
from starlette.responses import Response

from nqp import store
from nqp.service.api.deps import CurrentKey, SessionDep
from nqp.service.errors import ApiError
from nqp.service.responses import JSONBytes

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/predictions", tags=["predictions"])

_CSV_FIELDS = [
    "prediction_id",
    "source",
    "sequence",
    "timestamp",
    "direction",
    "confidence",
    "magnitude",
    "expected_change",
    "uncertainty",
    "horizon",
    "warming_up",
    "anomaly_score",
]


@router.get(
    "",
    responses={
        200: {
            "description": "JSON page ({predictions, next_cursor}) or, with format=csv, CSV.",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    },
)
async def list_predictions(
    principal: CurrentKey,
    session: SessionDep,
    source: str | None = Query(None, min_length=1, max_length=200),
    start: float | None = Query(None, description="Point timestamp ≥ start (epoch seconds)."),
    end: float | None = Query(None, description="Point timestamp < end (epoch seconds)."),
    limit: int = Query(100, ge=1, le=10_000),
    cursor: str | None = Query(
        None, max_length=100, description="next_cursor of the previous page."
    ),
    format: Literal["json", "csv"] = "json",
) -> Any:
    """The caller's tenant's predictions, oldest first."""
    try:
        rows, next_cursor = await store.query_predictions(
            session,
            tenant_id=principal.tenant_id,
            source=source,
            start=start,
            end=end,
            limit=limit,
            cursor=cursor,
        )
    except ValueError as exc:
        raise ApiError(422, str(exc), field="cursor") from None
    payloads = [r.payload for r in rows]
    if format == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=_CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(payloads)
        headers = {"X-Next-Cursor": next_cursor} if next_cursor is not None else {}
        return Response(buf.getvalue(), media_type="text/csv", headers=headers)
    return JSONBytes({"predictions": payloads, "next_cursor": next_cursor})
