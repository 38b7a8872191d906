"""Storage: SQLAlchemy 2 (async) models, data functions and Alembic migrations.

SQLite (one file, WAL) by default, PostgreSQL when ``NQP_DATABASE_URL`` says so. Data
functions take an :class:`~sqlalchemy.ext.asyncio.AsyncSession` first and keyword-only
arguments after it; they flush but never commit, so the caller decides what one
transaction is. Every tenant-owned query filters by ``tenant_id``.

Examples
--------
>>> import asyncio, tempfile, os
>>> from nqp import store
>>> async def demo(url):
...     await store.migrate(url)
...     engine = store.make_engine(url)
...     async with store.make_sessionmaker(engine).begin() as session:
...         tenant = await store.get_or_create_tenant(session, name="acme")
...         v1 = await store.put_config(
...             session, tenant_id=tenant.id, service="engine", data={"horizon": 1},
...             created_by=None)
...         v2 = await store.put_config(
...             session, tenant_id=tenant.id, service="engine", data={"horizon": 5},
...             created_by=None)
...         latest = await store.get_config(session, tenant_id=tenant.id, service="engine")
...     await engine.dispose()
...     return v1, v2, latest.data
>>> with tempfile.TemporaryDirectory() as tmp:
...     asyncio.run(demo(f"sqlite:///{os.path.join(tmp, 'nqp.db')}"))
(1, 2, {'horizon': 5})
"""

from nqp.store.audit import list_events, record_event
from nqp.store.checkpoints import (
    delete_checkpoint,
    list_sources,
    load_checkpoint,
    load_checkpoints,
    save_checkpoint,
    save_checkpoints,
)
from nqp.store.configs import config_history, get_config, put_config, rollback_config
from nqp.store.db import (
    alembic_config,
    make_engine,
    make_sessionmaker,
    migrate,
    migrate_sync,
    migrations_path,
    normalize_database_url,
)
from nqp.store.errors import DuplicateError, SchemaNewerError
from nqp.store.jobs import (
    create_job,
    delete_jobs_before,
    delete_jobs_for_source,
    fail_unfinished,
    get_job,
    renew_leases,
    update_job,
)
from nqp.store.keys import create_key, get_key, get_key_by_hash, list_keys, revoke_key, touch_key
from nqp.store.models import (
    FINAL_STATUSES,
    ApiKey,
    AuditEvent,
    Base,
    Config,
    Job,
    Prediction,
    SourceCheckpoint,
    Tenant,
    ValidationRun,
)
from nqp.store.predictions import (
    PredictionRow,
    delete_predictions,
    delete_predictions_before,
    insert_predictions,
    query_predictions,
)
from nqp.store.tenants import get_or_create_tenant, get_tenant
from nqp.store.validation_runs import (
    create_validation_run,
    get_validation_run,
    list_validation_runs,
    update_validation_run,
)

__all__ = [
    "FINAL_STATUSES",
    "ApiKey",
    "AuditEvent",
    "Base",
    "Config",
    "DuplicateError",
    "Job",
    "Prediction",
    "PredictionRow",
    "SchemaNewerError",
    "SourceCheckpoint",
    "Tenant",
    "ValidationRun",
    "alembic_config",
    "config_history",
    "create_job",
    "create_key",
    "create_validation_run",
    "delete_checkpoint",
    "delete_jobs_before",
    "delete_jobs_for_source",
    "delete_predictions",
    "delete_predictions_before",
    "fail_unfinished",
    "get_config",
    "get_job",
    "get_key",
    "get_key_by_hash",
    "get_or_create_tenant",
    "get_tenant",
    "get_validation_run",
    "insert_predictions",
    "list_events",
    "list_keys",
    "list_sources",
    "list_validation_runs",
    "load_checkpoint",
    "load_checkpoints",
    "make_engine",
    "make_sessionmaker",
    "migrate",
    "migrate_sync",
    "migrations_path",
    "normalize_database_url",
    "put_config",
    "query_predictions",
    "record_event",
    "renew_leases",
    "revoke_key",
    "rollback_config",
    "save_checkpoint",
    "save_checkpoints",
    "touch_key",
    "update_job",
    "update_validation_run",
]
