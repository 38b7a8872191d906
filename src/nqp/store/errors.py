"""Errors the store raises on purpose (database errors are translated here, not leaked)."""

from __future__ import annotations

from nqp.exceptions import NQPError

__all__ = ["DuplicateError"]


class DuplicateError(NQPError, ValueError):
    """A row with the same key already exists (e.g. a client-chosen job id reused)."""
