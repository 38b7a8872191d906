"""Versioned engine configuration per tenant: read, put, history, rollback.

``service`` is one of the engine-facing sections of :class:`nqp.config.Settings`:
``engine`` (:class:`~nqp.config.EngineSettings`), ``neuromorphic``
(:class:`~nqp.config.NeuromorphicSettings`) and ``quantum``
(:class:`~nqp.config.QuantumSettings`). A put is validated by that section's model and
stored complete (defaults filled in) as the next version; a rollback stores an old
version's data again as a new version, so history is never rewritten.

What stored configuration does (and does not do): it is a per-tenant, versioned record
of the settings the tenant wants for its engines. The engine running in this gateway
process was built from the process settings (``NQP_*`` environment) and is **not**
reconfigured by these endpoints — nothing hot-reloads. A deployment that wants a tenant's
stored configuration applied must read it when it builds that tenant's engine (for its
new sources); until then ``GET`` shows the stored record, not what is running.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query
from pydantic import BaseModel, Field, ValidationError

from nqp import store
from nqp.config import EngineSettings, NeuromorphicSettings, QuantumSettings
from nqp.service.api.deps import AdminKey, CurrentKey, RuntimeDep, SessionDep
from nqp.service.errors import ApiError

__all__ = ["SECTIONS", "ConfigVersion", "RollbackRequest", "router"]

router = APIRouter(prefix="/api/v1/config", tags=["config"])

SECTIONS: dict[str, type[BaseModel]] = {
    "engine": EngineSettings,
    "neuromorphic": NeuromorphicSettings,
    "quantum": QuantumSettings,
}


class ConfigVersion(BaseModel):
    service: str
    version: int = Field(description="1, 2, ... per tenant and service; 0: process defaults.")
    data: dict[str, Any]
    created_at: datetime | None
    created_by: str | None = Field(description="Id of the key that stored it.")


class RollbackRequest(BaseModel):
    model_config = {"extra": "forbid"}

    version: int = Field(ge=1, description="The version whose data becomes the newest.")


def _section(service: str) -> str:
    if service not in SECTIONS:
        raise ApiError(
            404,
            f"Unknown configuration service {service!r}; one of: {', '.join(SECTIONS)}.",
            field="service",
        )
    return service


Service = Annotated[str, Depends(_section)]


def _validated(service: str, data: Any) -> dict[str, Any]:
    """The section's complete data, or 422 naming the first bad field."""
    model = SECTIONS[service]
    try:
        return model.model_validate(data).model_dump(mode="json")
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(p) for p in err.get("loc", ())]
        message = str(err.get("msg", "invalid value"))
        if not loc:  # a model-level rule: name the first field its message mentions
            loc = [next((f for f in model.model_fields if message.find(f) >= 0), "")]
        field = ".".join(p for p in loc if p) or None
        text = f"{field}: {message}" if field else message
        raise ApiError(422, text, field=field) from None


def _public(row: Any) -> ConfigVersion:
    return ConfigVersion(
        service=row.service,
        version=row.version,
        data=row.data,
        created_at=row.created_at,
        created_by=row.created_by,
    )


@router.get("/{service}")
async def get_config(
    principal: CurrentKey, service: Service, runtime: RuntimeDep, session: SessionDep
) -> ConfigVersion:
    """The tenant's latest stored version; version 0 = this process's settings if none.

    Stored configuration is a per-tenant record; the engine in this process runs on the
    process settings and does not hot-reload it (see the module notes).
    """
    row = await store.get_config(session, tenant_id=principal.tenant_id, service=service)
    if row is None:
        section: BaseModel = getattr(runtime.settings, service)
        return ConfigVersion(
            service=service,
            version=0,
            data=section.model_dump(mode="json"),
            created_at=None,
            created_by=None,
        )
    return _public(row)


@router.put("/{service}")
async def put_config(
    principal: AdminKey,
    service: Service,
    session: SessionDep,
    data: Annotated[dict[str, Any], Body(description="The complete section.")],
) -> ConfigVersion:
    """Store the complete section as the next version (admins; 422 naming a bad field).

    Omitted fields take their defaults. This records configuration for the tenant; it
    does not reconfigure the engine already running in this process, which keeps the
    process settings (nothing hot-reloads; see the module notes).
    """
    clean = _validated(service, data)
    version = await store.put_config(
        session,
        tenant_id=principal.tenant_id,
        service=service,
        data=clean,
        created_by=principal.key_id,
    )
    await store.record_event(
        session,
        tenant_id=principal.tenant_id,
        actor_key_id=principal.key_id,
        action="config.put",
        target=f"{service}:{version}",
        details={"service": service, "version": version},
    )
    row = await store.get_config(
        session, tenant_id=principal.tenant_id, service=service, version=version
    )
    await session.commit()
    return _public(row)


@router.get("/{service}/history")
async def config_history(
    principal: CurrentKey,
    service: Service,
    session: SessionDep,
    limit: int = Query(50, ge=1, le=1000, description="Newest versions returned at most."),
) -> dict[str, list[ConfigVersion]]:
    """The tenant's stored versions of ``service``, newest first."""
    rows = await store.config_history(
        session, tenant_id=principal.tenant_id, service=service, limit=limit
    )
    return {"versions": [_public(r) for r in rows]}


@router.post("/{service}/rollback")
async def rollback_config(
    principal: AdminKey, service: Service, body: RollbackRequest, session: SessionDep
) -> ConfigVersion:
    """Store version ``body.version``'s data again as the newest version (admins).

    404 if the tenant has no such version; 409 if that data no longer validates against
    the current settings schema. Like ``PUT``, this does not reconfigure the running
    engine.
    """
    old = await store.get_config(
        session, tenant_id=principal.tenant_id, service=service, version=body.version
    )
    if old is None:
        raise ApiError(404, f"No version {body.version} of {service!r} config.", field="version")
    try:
        SECTIONS[service].model_validate(old.data)
    except ValidationError as exc:
        raise ApiError(
            409,
            f"Version {body.version} no longer validates: {exc.errors()[0].get('msg')}.",
            field="version",
        ) from None
    version = await store.rollback_config(
        session,
        tenant_id=principal.tenant_id,
        service=service,
        version=body.version,
        created_by=principal.key_id,
    )
    if version is None:  # pragma: no cover - read just above in this transaction
        raise ApiError(404, f"No version {body.version} of {service!r} config.", field="version")
    await store.record_event(
        session,
        tenant_id=principal.tenant_id,
        actor_key_id=principal.key_id,
        action="config.rollback",
        target=f"{service}:{version}",
        details={"service": service, "version": version, "from_version": body.version},
    )
    row = await store.get_config(
        session, tenant_id=principal.tenant_id, service=service, version=version
    )
    await session.commit()
    return _public(row)
