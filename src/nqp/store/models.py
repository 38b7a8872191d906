"""SQLAlchemy 2 ORM models: the tables NQP stores.

Every tenant-owned row carries ``tenant_id`` (foreign key to ``tenants``, ``ON DELETE
CASCADE``) and every query in :mod:`nqp.store` filters by it, so tenants never see each
other's rows. Timestamps are timezone-aware UTC :class:`~datetime.datetime` on both
backends (:class:`UTCDateTime`); ids are UUID hex strings except the autoincrement integer
ids of append-only tables (configs, predictions, audit events).

The migration ``versions/0001_initial.py`` creates exactly these tables; a test compares
the migrated schema with :data:`Base.metadata` using Alembic's autogenerate comparison.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = [
    "FINAL_STATUSES",
    "KEY_ROLES",
    "RUN_STATUSES",
    "ApiKey",
    "AuditEvent",
    "Base",
    "Config",
    "Job",
    "Prediction",
    "SourceCheckpoint",
    "StreamPosition",
    "Tenant",
    "UTCDateTime",
    "ValidationRun",
    "new_id",
    "utcnow",
]

#: Roles an API key may have, most privileged first.
KEY_ROLES = ("admin", "developer", "viewer")
#: Lifecycle of jobs and validation runs: queued -> running -> succeeded | failed.
RUN_STATUSES = ("queued", "running", "succeeded", "failed")
#: The statuses a job or run ends in (it changes no more).
FINAL_STATUSES = ("succeeded", "failed")

# Deterministic constraint names, so later migrations can drop/alter them on both backends.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BigInteger ids that are still SQLite's INTEGER PRIMARY KEY (rowid alias, autoincrement).
_BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    """The current time as a timezone-aware UTC datetime."""
    return datetime.now(UTC)


def new_id() -> str:
    """A new random id: 32 lowercase hex digits (UUID4)."""
    return uuid.uuid4().hex


class UTCDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that always returns aware UTC datetimes.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so values are stored as
    UTC and tagged UTC when read. Naive datetimes are rejected rather than guessed.

    Examples
    --------
    >>> from datetime import datetime, timedelta, timezone
    >>> t = datetime(2024, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    >>> UTCDateTime().process_bind_param(t, None).isoformat()
    '2024-01-01T10:00:00+00:00'
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect | None) -> Any:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; pass an aware UTC time")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every NQP table (one :class:`~sqlalchemy.MetaData`)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


def _tenant_fk() -> Any:
    return ForeignKey("tenants.id", ondelete="CASCADE")


def _key_fk() -> Any:
    return ForeignKey("api_keys.id", ondelete="SET NULL")


class Tenant(Base):
    """A customer: owns keys, sources, predictions, jobs and configs."""

    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    """An API key, stored as the SHA-256 hex of the full key (the key itself is shown once)."""

    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint("role IN ('admin', 'developer', 'viewer')", name="role"),
        Index(None, "tenant_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(32), _tenant_fk())
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    rate_limit_per_s: Mapped[float | None] = mapped_column(Float)
    daily_quota: Mapped[int | None] = mapped_column(Integer)
    last_used_at: Mapped[datetime | None] = mapped_column()

    def is_active(self, now: datetime | None = None) -> bool:
        """Whether the key is neither revoked nor expired at ``now`` (default: current time)."""
        now = utcnow() if now is None else now
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or now < self.expires_at


class Config(Base):
    """One version of a service's configuration; versions are 1, 2, ... per (tenant, service)."""

    __tablename__ = "configs"
    __table_args__ = (UniqueConstraint("tenant_id", "service", "version"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(32), _tenant_fk())
    service: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(32), _key_fk())


class Job(Base):
    """A batch job: its request, the sources it touches, and its outcome.

    The primary key is ``(tenant_id, id)`` so a client-chosen job id never collides with
    (or reveals) another tenant's job.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed')", name="status"),
        Index(None, "created_at"),
    )

    tenant_id: Mapped[str] = mapped_column(String(32), _tenant_fk(), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    request: Mapped[dict[str, Any]] = mapped_column()
    sources: Mapped[list[str]] = mapped_column(JSON, default=list)
    result: Mapped[dict[str, Any] | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)
    callback_url: Mapped[str | None] = mapped_column(String(2048))
    callback_status: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
    # renewed by the gateway running it; a stale lease means that gateway died
    heartbeat_at: Mapped[datetime | None] = mapped_column()


class Prediction(Base):
    """One stored prediction; ``payload`` holds the whole prediction as JSON.

    ``ts`` is the point's time in epoch seconds (float); queries page by ``(ts, id)``.
    A point's prediction is stored once: ``prediction_id`` is a hash of the tenant's source,
    the sequence number and the timestamp, so the unique key is those columns themselves
    (inserts skip a stored key). Ordered ``(tenant_id, source, ts, sequence)``, that index
    also serves queries by source and time range. On PostgreSQL ``prediction_id`` stays
    unique for a release, for the previous release's processes (``ON CONFLICT
    (prediction_id)``) during a rolling upgrade; SQLite, one process's database, has no
    index on it: on random keys it was the costliest one a stored row updated.
    """

    __tablename__ = "predictions"
    __table_args__ = (
        Index(
            "uq_predictions_tenant_source_ts_sequence",
            "tenant_id",
            "source",
            "ts",
            "sequence",
            unique=True,
        ),
        UniqueConstraint("prediction_id").ddl_if(dialect="postgresql"),
        Index("ix_predictions_tenant_ts", "tenant_id", "ts"),
        Index("ix_predictions_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(32), _tenant_fk())
    source: Mapped[str] = mapped_column(String(256))
    prediction_id: Mapped[str] = mapped_column(String(64))
    sequence: Mapped[int] = mapped_column(BigInteger)
    ts: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    direction: Mapped[str] = mapped_column(String(8))
    confidence: Mapped[float] = mapped_column(Float)
    payload: Mapped[dict[str, Any]] = mapped_column()


class SourceCheckpoint(Base):
    """A source's serialised model state (engine checkpoint bytes)."""

    __tablename__ = "source_checkpoints"

    tenant_id: Mapped[str] = mapped_column(String(32), _tenant_fk(), primary_key=True)
    source: Mapped[str] = mapped_column(String(256), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class StreamPosition(Base):
    """The input-topic position of a source's checkpoint (distributed mode; one row per
    tenant and source). See :mod:`nqp.stream.positions`."""

    __tablename__ = "stream_positions"

    tenant_id: Mapped[str] = mapped_column(String(32), _tenant_fk(), primary_key=True)
    source: Mapped[str] = mapped_column(String(256), primary_key=True)
    input_topic_id: Mapped[str] = mapped_column(String(64))
    input_partition: Mapped[int] = mapped_column(Integer)
    input_offset: Mapped[int] = mapped_column(BigInteger)
    producer_sequence: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEvent(Base):
    """A security-relevant event (key created/revoked, config changed, source erased, ...)."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_tenant_id_id", "tenant_id", "id"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("tenants.id", ondelete="SET NULL")
    )
    actor_key_id: Mapped[str | None] = mapped_column(String(32), _key_fk())
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str | None] = mapped_column(String(512))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ValidationRun(Base):
    """A walk-forward validation run requested through the API, and its report."""

    __tablename__ = "validation_runs"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed')", name="status"),
        Index(None, "tenant_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(32), _tenant_fk())
    status: Mapped[str] = mapped_column(String(16), default="queued")
    request: Mapped[dict[str, Any]] = mapped_column()
    result: Mapped[dict[str, Any] | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
    heartbeat_at: Mapped[datetime | None] = mapped_column()  # as Job.heartbeat_at
