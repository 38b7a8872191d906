"""A JSON response rendered with orjson (NaN-free, numpy-aware, fast)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse

__all__ = ["JSONBytes", "dumps"]


def dumps(content: Any) -> bytes:
    """Serialise to JSON bytes (numpy scalars/arrays allowed; NaN becomes null)."""
    return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


class JSONBytes(JSONResponse):
    """``application/json`` via :func:`dumps` (a JSONResponse, so OpenAPI keeps the models)."""

    def render(self, content: Any) -> bytes:
        return dumps(content)
