"""Errors the store raises on purpose (database errors are translated here, not leaked)."""

from __future__ import annotations

from nqp.exceptions import NQPError

__all__ = ["DuplicateError", "SchemaNewerError"]


class DuplicateError(NQPError, ValueError):
    """A row with the same key already exists (e.g. a client-chosen job id reused)."""


class SchemaNewerError(NQPError, RuntimeError):
    """The database's schema revision is newer than this build knows (a newer release
    migrated it): this build must not migrate it, and ``nqp migrate`` says so."""
