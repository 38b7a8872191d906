"""One error shape for every failure: ``{"error": {"code", "message", "field"?}}``.

Only the API layer raises HTTP errors; engine errors (``InvalidInputError`` etc.) are
translated here, at one boundary.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from nqp.exceptions import InvalidInputError, InvalidParameterError
from nqp.service.responses import JSONBytes

__all__ = [
    "ERROR_RESPONSES",
    "POINTS_FIELD",
    "POINTS_MESSAGE",
    "ApiError",
    "ErrorBody",
    "error_body",
    "install_error_handlers",
]

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class ErrorDetail(BaseModel):
    code: str = Field(description="Machine-readable error code, e.g. invalid_request.")
    message: str
    field: str | None = Field(None, description="The request field at fault, when one is.")


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in {
        401: "Missing, invalid, revoked or expired credentials.",
        403: "The key's role does not allow this.",
        404: "Not found in the caller's tenant.",
        409: "Conflicts with existing state (duplicate id, limits).",
        413: "Body too large.",
        422: "Invalid request; `field` names the culprit.",
        429: "Rate limit, quota or queue full; see Retry-After.",
        503: "Draining or not ready; see Retry-After.",
    }.items()
}
"""Documented on every operation (OpenAPI): errors always have the :class:`ErrorBody` shape."""


class ApiError(Exception):
    """An HTTP error with a machine-readable code, raised by routes and dependencies."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or _STATUS_CODES.get(status, "error")
        self.field = field
        self.headers = headers


#: The name of the request fields that hold points (``nqp.service.api.routes.process.Points``).
#: An error inside one (pydantic reports one per member of the number/list/list-of-lists
#: union, each with the member's name in its location) is reported at the field itself.
POINTS_FIELD = "data"
POINTS_MESSAGE = (
    "must be a number, a list of numbers or a list of lists of numbers (not booleans or strings)"
)


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        err["field"] = field
    return {"error": err}


def _response(status: int, code: str, message: str, field: str | None = None, headers=None):
    return JSONBytes(error_body(code, message, field), status_code=status, headers=headers)


def error_response(exc: Exception) -> JSONBytes | None:
    """The ``{error}`` response of an exception the API translates, else None.

    One translation for the app's exception handlers and for routes served outside FastAPI's
    routing (the realtime shortcut).
    """
    if isinstance(exc, ApiError):
        return _response(exc.status, exc.code, exc.message, exc.field, exc.headers)
    if isinstance(exc, RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        msg = str(first.get("msg"))
        if POINTS_FIELD in loc[:-1]:  # inside the points: one error per union member
            loc, msg = loc[: loc.index(POINTS_FIELD) + 1], POINTS_MESSAGE
        field = ".".join(loc) or None
        message = f"{field}: {msg}" if field else msg
        return _response(422, "invalid_request", message, field)
    if isinstance(exc, InvalidInputError | InvalidParameterError):
        return _response(422, "invalid_request", str(exc))
    return None


def install_error_handlers(app: FastAPI) -> None:
    """Register the translations of every error the app can meet."""

    async def _translate(_: Request, exc: Exception) -> JSONBytes:
        response = error_response(exc)  # registered for translated types only
        return response if response is not None else _response(500, "internal", str(exc))

    for exc_type in (ApiError, RequestValidationError, InvalidInputError, InvalidParameterError):
        app.add_exception_handler(exc_type, _translate)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONBytes:
        code = _STATUS_CODES.get(exc.status_code, "error")
        return _response(exc.status_code, code, str(exc.detail), headers=exc.headers)
