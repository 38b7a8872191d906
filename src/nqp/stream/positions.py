"""Stream positions: where in the input topic each source's checkpoint stands.

A worker saves a source's engine checkpoint and its *position* in one database
transaction: the partition and offset of the last input record applied to that state,
and the last producer ``sequence`` seen for the source. Offsets are committed to Kafka
only afterwards, so after a crash the new owner re-reads from the committed offset
(at or before every position) and skips, per source, the records the checkpoint already
contains. Applying a record twice is therefore impossible even when the crash falls
between the database commit and the Kafka commit.

Saves are *monotonic*: a position (and with it the checkpoint) is replaced only by one
at the same or a later offset of the same partition (or any offset of another partition,
after the topic was re-partitioned, or of a re-created topic, told apart by its id). A
fenced "zombie" worker that still holds an old state cannot overwrite a newer owner's
checkpoint.

The table is created by migration ``0002_stream_positions``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import delete, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from nqp.store._dialect import upsert_insert
from nqp.store.checkpoints import save_checkpoints
from nqp.store.models import StreamPosition, utcnow

__all__ = [
    "Position",
    "StreamPosition",
    "delete_position",
    "load_positions",
    "save_states",
]


@dataclass(frozen=True)
class Position:
    """Last input record applied to a source's state.

    Attributes
    ----------
    partition, offset : int
        Where that record was in the input topic.
    producer_sequence : int or None
        The last producer ``sequence`` seen for the source.
    topic_id : str
        The input topic's id (Kafka topic UUID, ``""`` when the broker has none): a
        deleted and re-created topic starts its offsets again at 0, and a position from
        its previous life must not make a worker skip the new records.
    """

    partition: int
    offset: int
    producer_sequence: int | None = None
    topic_id: str = ""


async def load_positions(
    session: AsyncSession, *, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], Position]:
    """Positions of many ``(tenant_id, source)`` pairs (absent when none is stored)."""
    wanted = list(dict.fromkeys(keys))
    found: dict[tuple[str, str], Position] = {}
    t = StreamPosition
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = await session.execute(
            select(
                t.tenant_id,
                t.source,
                t.input_partition,
                t.input_offset,
                t.producer_sequence,
                t.input_topic_id,
            ).where(tuple_(t.tenant_id, t.source).in_(chunk))
        )
        for tenant_id, source, partition, offset, seq, topic_id in rows:
            found[(tenant_id, source)] = Position(int(partition), int(offset), seq, topic_id)
    return found


async def save_states(
    session: AsyncSession,
    *,
    states: Mapping[tuple[str, str], tuple[bytes, Position]],
) -> set[tuple[str, str]]:
    """Store checkpoints with their positions; return the pairs actually written.

    Parameters
    ----------
    states : mapping of (tenant_id, source) to (checkpoint bytes, Position)

    Returns
    -------
    set of (tenant_id, source)
        The sources whose stored position was absent, at an earlier or equal offset, or on
        another partition or topic incarnation; only their checkpoints are written. The
        others already hold a later state (written by the source's newer owner) and are
        left alone.

    Notes
    -----
    Two multi-row statements: the conditional position upsert (``RETURNING`` the rows it
    wrote) and :func:`nqp.store.save_checkpoints` for the rows it wrote.
    """
    if not states:
        return set()
    t = StreamPosition.__table__
    now = utcnow()
    stmt = upsert_insert(session, t)
    stmt = stmt.on_conflict_do_update(
        index_elements=["tenant_id", "source"],
        set_={
            "input_topic_id": stmt.excluded.input_topic_id,
            "input_partition": stmt.excluded.input_partition,
            "input_offset": stmt.excluded.input_offset,
            "producer_sequence": stmt.excluded.producer_sequence,
            "updated_at": stmt.excluded.updated_at,
        },
        where=or_(
            t.c.input_topic_id != stmt.excluded.input_topic_id,
            t.c.input_partition != stmt.excluded.input_partition,
            t.c.input_offset <= stmt.excluded.input_offset,
        ),
    ).returning(t.c.tenant_id, t.c.source)
    params = [
        {
            "tenant_id": tenant_id,
            "source": source,
            "input_topic_id": pos.topic_id,
            "input_partition": pos.partition,
            "input_offset": pos.offset,
            "producer_sequence": pos.producer_sequence,
            "updated_at": now,
        }
        for (tenant_id, source), (_, pos) in states.items()
    ]
    result = await session.execute(stmt, params)
    accepted = {(r[0], r[1]) for r in result.all()}
    if accepted:
        await save_checkpoints(session, ((*k, states[k][0]) for k in accepted))
    return accepted


async def delete_position(session: AsyncSession, *, tenant_id: str, source: str) -> bool:
    """Delete a source's position; ``True`` if it had one."""
    result = await session.execute(
        delete(StreamPosition)
        .where(StreamPosition.tenant_id == tenant_id, StreamPosition.source == source)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
