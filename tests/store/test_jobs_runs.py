"""Batch jobs and validation runs on both backends: lifecycle, scoping, erasure, retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from nqp.store import (
    DuplicateError,
    create_job,
    create_validation_run,
    delete_jobs_before,
    delete_jobs_for_source,
    get_job,
    get_validation_run,
    update_job,
    update_validation_run,
)

REQUEST = {"data_points": [{"source": "s1", "data": [1.0]}, {"source": "s2", "data": [2.0]}]}


async def test_job_lifecycle(session, sessionmaker, tenants):
    a, _ = tenants
    job = await create_job(
        session,
        tenant_id=a,
        request=REQUEST,
        sources=["s1", "s2", "s1"],
        callback_url="https://example.com/hook",
    )
    job_id = job.id
    await session.commit()
    assert (job.status, job.sources, job.result, job.finished_at) == (
        "queued",
        ["s1", "s2"],
        None,
        None,
    )
    assert len(job_id) == 32

    running = await update_job(session, tenant_id=a, job_id=job_id, status="running")
    assert (running.status, running.finished_at) == ("running", None)
    done = await update_job(
        session, tenant_id=a, job_id=job_id, status="succeeded", result={"predictions": [1, 2]}
    )
    assert done.finished_at is not None
    assert done.finished_at.tzinfo is not None
    await update_job(session, tenant_id=a, job_id=job_id, callback_status="delivered:200")
    await session.commit()

    async with sessionmaker() as fresh:
        stored = await get_job(fresh, tenant_id=a, job_id=job_id)
        assert (stored.status, stored.result, stored.callback_status, stored.request) == (
            "succeeded",
            {"predictions": [1, 2]},
            "delivered:200",
            REQUEST,
        )
        assert stored.callback_url == "https://example.com/hook"
        assert stored.finished_at == done.finished_at
        assert stored.error is None


async def test_failed_job_keeps_error_and_explicit_finish_time(session, tenants):
    a, _ = tenants
    job = await create_job(session, tenant_id=a, request={}, sources=[])
    t = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    failed = await update_job(
        session, tenant_id=a, job_id=job.id, status="failed", error="boom", finished_at=t
    )
    assert (failed.status, failed.error, failed.finished_at) == ("failed", "boom", t)
    with pytest.raises(ValueError, match="'done'"):
        await update_job(session, tenant_id=a, job_id=job.id, status="done")


async def test_jobs_are_tenant_scoped(session, tenants):
    a, b = tenants
    job = await create_job(session, tenant_id=a, request=REQUEST, sources=["s1"])
    await session.commit()
    assert await get_job(session, tenant_id=b, job_id=job.id) is None
    assert await update_job(session, tenant_id=b, job_id=job.id, status="failed") is None
    assert await delete_jobs_for_source(session, tenant_id=b, source="s1") == 0
    await session.commit()
    assert (await get_job(session, tenant_id=a, job_id=job.id)).status == "queued"


async def test_client_job_ids_are_unique_per_tenant(session, tenants):
    a, b = tenants
    await create_job(session, tenant_id=a, request={"n": 1}, sources=[], job_id="my-job")
    with pytest.raises(DuplicateError, match="my-job"):
        await create_job(session, tenant_id=a, request={"n": 2}, sources=[], job_id="my-job")
    theirs = await create_job(session, tenant_id=b, request={"n": 3}, sources=[], job_id="my-job")
    await session.commit()
    assert theirs.request == {"n": 3}
    assert (await get_job(session, tenant_id=a, job_id="my-job")).request == {"n": 1}


async def test_erasing_a_source_deletes_every_job_that_mentions_it(session, tenants):
    a, b = tenants
    only = await create_job(session, tenant_id=a, request={}, sources=["gone"])
    mixed = await create_job(session, tenant_id=a, request={}, sources=["keep", "gone"])
    other = await create_job(session, tenant_id=a, request={}, sources=["keep"])
    similar = await create_job(session, tenant_id=a, request={}, sources=["gone2"])
    theirs = await create_job(session, tenant_id=b, request={}, sources=["gone"])
    ids = {j: j.id for j in (only, mixed, other, similar, theirs)}
    await session.commit()
    assert await delete_jobs_for_source(session, tenant_id=a, source="gone") == 2
    await session.commit()
    session.expire_all()
    assert await get_job(session, tenant_id=a, job_id=ids[only]) is None
    assert await get_job(session, tenant_id=a, job_id=ids[mixed]) is None
    assert await get_job(session, tenant_id=a, job_id=ids[other]) is not None
    assert await get_job(session, tenant_id=a, job_id=ids[similar]) is not None
    assert await get_job(session, tenant_id=b, job_id=ids[theirs]) is not None


async def test_job_retention_deletes_only_older_jobs(session, tenants):
    a, b = tenants
    old = await create_job(session, tenant_id=a, request={}, sources=[])
    old_b = await create_job(session, tenant_id=b, request={}, sources=[])
    new = await create_job(session, tenant_id=a, request={}, sources=[])
    cutoff = datetime.now(UTC)
    old.created_at = cutoff - timedelta(days=2)
    old_b.created_at = cutoff - timedelta(microseconds=1)
    new.created_at = cutoff
    new_id = new.id
    await session.commit()
    assert await delete_jobs_before(session, cutoff=cutoff) == 2
    await session.commit()
    session.expire_all()
    assert await get_job(session, tenant_id=a, job_id=new_id) is not None
    assert await delete_jobs_before(session, cutoff=cutoff) == 0


async def test_validation_run_lifecycle_and_scoping(session, sessionmaker, tenants):
    a, b = tenants
    run = await create_validation_run(session, tenant_id=a, request={"dataset": "lorenz"})
    run_id = run.id
    await session.commit()
    assert (run.status, run.result, run.error, run.finished_at) == ("queued", None, None, None)
    assert await get_validation_run(session, tenant_id=b, run_id=run_id) is None
    assert await update_validation_run(session, tenant_id=b, run_id=run_id, status="failed") is None
    assert await update_validation_run(session, tenant_id=a, run_id="nope", status="failed") is None
    await update_validation_run(session, tenant_id=a, run_id=run_id, status="running")
    done = await update_validation_run(
        session, tenant_id=a, run_id=run_id, status="succeeded", result={"hit_rate": 0.55}
    )
    assert done.finished_at is not None
    with pytest.raises(ValueError, match="'bogus'"):
        await update_validation_run(session, tenant_id=a, run_id=run_id, status="bogus")
    await session.commit()
    async with sessionmaker() as fresh:
        stored = await get_validation_run(fresh, tenant_id=a, run_id=run_id)
        assert (stored.status, stored.result, stored.request) == (
            "succeeded",
            {"hit_rate": 0.55},
            {"dataset": "lorenz"},
        )
        assert stored.finished_at == done.finished_at
    failed = await update_validation_run(
        session, tenant_id=a, run_id=run_id, status="failed", error="diverged", result=None
    )
    assert (failed.error, failed.result) == ("diverged", None)


async def test_fail_unfinished_closes_only_in_flight_work_created_before(session, tenants):
    from datetime import timedelta

    from nqp.store import (
        create_job,
        create_validation_run,
        fail_unfinished,
        get_job,
        get_validation_run,
        update_job,
    )
    from nqp.store.models import utcnow

    a, _ = tenants
    queued = await create_job(session, tenant_id=a, request={}, sources=["s"])
    running = await create_job(session, tenant_id=a, request={}, sources=["s"])
    done = await create_job(session, tenant_id=a, request={}, sources=["s"])
    run = await create_validation_run(session, tenant_id=a, request={})
    await update_job(session, tenant_id=a, job_id=running.id, status="running")
    await update_job(session, tenant_id=a, job_id=done.id, status="succeeded", result={})
    await session.commit()
    later = utcnow() + timedelta(seconds=1)
    assert await fail_unfinished(
        session, started_before=utcnow() - timedelta(days=1), error="x"
    ) == (0, 0)
    assert await fail_unfinished(session, started_before=later, error="interrupted") == (2, 1)
    await session.commit()
    session.expunge_all()  # a bulk UPDATE does not refresh objects already loaded
    for job_id in (queued.id, running.id):
        job = await get_job(session, tenant_id=a, job_id=job_id)
        assert (job.status, job.error) == ("failed", "interrupted")
        assert job.finished_at is not None
    assert (await get_job(session, tenant_id=a, job_id=done.id)).status == "succeeded"
    assert (await get_validation_run(session, tenant_id=a, run_id=run.id)).status == "failed"


async def test_stale_leases_close_only_work_no_gateway_renews(session, tenants):
    from sqlalchemy import update

    from nqp.store import (
        create_job,
        create_validation_run,
        fail_unfinished,
        get_job,
        get_validation_run,
        renew_leases,
    )
    from nqp.store.models import Job, ValidationRun, utcnow

    a, b = tenants
    now = utcnow()
    old = now - timedelta(minutes=10)
    renewed = await create_job(session, tenant_id=a, request={}, sources=["s"])
    orphan = await create_job(session, tenant_id=a, request={}, sources=["s"])
    fresh = await create_job(session, tenant_id=b, request={}, sources=["s"])  # never renewed
    live_run = await create_validation_run(session, tenant_id=a, request={})
    dead_run = await create_validation_run(session, tenant_id=b, request={})
    for model, ids in ((Job, [renewed.id, orphan.id]), (ValidationRun, [live_run.id, dead_run.id])):
        await session.execute(
            update(model).where(model.id.in_(ids)).values(status="running", created_at=old)
        )
    await session.commit()
    with pytest.raises(ValueError, match="exactly one"):
        await fail_unfinished(session, error="x")
    # a lease names (tenant, id): tenant b's key does not renew tenant a's job
    await renew_leases(session, jobs=[(a, renewed.id), (b, orphan.id)], runs=[(a, live_run.id)])
    await session.commit()
    stale = now - timedelta(seconds=60)
    assert await fail_unfinished(session, stale_before=stale, error="interrupted") == (1, 1)
    await session.commit()
    session.expunge_all()
    assert (await get_job(session, tenant_id=a, job_id=renewed.id)).status == "running"
    assert (await get_job(session, tenant_id=b, job_id=fresh.id)).status == "queued"
    gone = await get_job(session, tenant_id=a, job_id=orphan.id)
    assert (gone.status, gone.error) == ("failed", "interrupted")
    assert (await get_validation_run(session, tenant_id=a, run_id=live_run.id)).status == "running"
    assert (await get_validation_run(session, tenant_id=b, run_id=dead_run.id)).status == "failed"
