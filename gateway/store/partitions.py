"""Partition leases of time-driven detection (DESIGN.md §9), in the database.

Households are split into `PARTITIONS` partitions by a stable hash of their id. Each detector
alive keeps a membership row fresh, and holds partitions by lease: its fair share (the
partitions divided among the members alive), taken from those nobody holds or whose lease ran
out. A detector that stops hands its partitions back; one that dies loses them when its leases
run out, and the others take them over from the point their state was last saved (`read_to`).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store.dialect import upsert
from gateway.store.tables import detector_members, detector_partitions

PARTITIONS = 64
"""Fixed for a deployment: every process must agree on which partition a household is in."""


def partition_of(household_id: str) -> int:
    """The household's partition: the same in every process and after every restart."""
    return zlib.crc32(household_id.encode()) % PARTITIONS


@dataclass(frozen=True, slots=True)
class Renewal:
    """What a detector holds after renewing its leases, and what changed."""

    held: dict[int, int]
    """Partition -> the readings id its state was saved up to."""
    gained: frozenset[int]
    lost: frozenset[int]
    """Partitions it held that another detector has taken over (its lease ran out)."""
    surplus: frozenset[int]
    """Partitions beyond its fair share now that more detectors are alive: to hand back."""


async def renew(
    conn: AsyncConnection, owner: str, holding: Collection[int], now: datetime, ttl: timedelta
) -> Renewal:
    """Keep `owner` alive, renew the leases it holds and take its fair share of the rest."""
    expires = now + ttl
    await _ensure_partitions(conn)
    stmt = upsert(conn, detector_members)
    await conn.execute(
        stmt.on_conflict_do_update(index_elements=["owner"], set_={"expires_at": expires}),
        [{"owner": owner, "expires_at": expires}],
    )
    members = await conn.scalar(
        sa.select(sa.func.count()).where(detector_members.c.expires_at > now)
    )
    fair = math.ceil(PARTITIONS / max(1, int(members or 1)))
    kept = await conn.execute(
        sa.update(detector_partitions)
        .where(detector_partitions.c.owner == owner)
        .values(expires_at=expires)
        .returning(detector_partitions.c.partition, detector_partitions.c.read_to)
    )
    held = {int(p): int(r) for p, r in kept}
    gained: set[int] = set()
    if len(held) < fair:
        free = sa.or_(
            detector_partitions.c.owner.is_(None), detector_partitions.c.expires_at <= now
        )
        query = (
            sa.select(detector_partitions.c.partition)
            .where(free)
            .order_by(detector_partitions.c.partition)
            .limit(fair - len(held))
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        wanted = [int(p) for p in await conn.scalars(query)]
        if wanted:
            taken = await conn.execute(
                sa.update(detector_partitions)
                .where(detector_partitions.c.partition.in_(wanted), free)
                .values(owner=owner, expires_at=expires)
                .returning(detector_partitions.c.partition, detector_partitions.c.read_to)
            )
            for p, r in taken:
                held[int(p)] = int(r)
                gained.add(int(p))
    surplus = sorted(held)[fair:] if len(held) > fair else []
    # Held but not known to the caller: taken now, or held before a restart under this name.
    gained.update(set(held) - set(holding))
    return Renewal(
        held=held,
        gained=frozenset(gained),
        lost=frozenset(set(holding) - set(held)),
        surplus=frozenset(surplus),
    )


async def save_read_to(
    conn: AsyncConnection, owner: str, partitions: Collection[int], read_to: int
) -> None:
    """Record that these partitions' state is saved up to readings id `read_to` (only those
    `owner` still holds)."""
    if partitions:
        await conn.execute(
            sa.update(detector_partitions)
            .where(
                detector_partitions.c.partition.in_(sorted(partitions)),
                detector_partitions.c.owner == owner,
            )
            .values(read_to=read_to)
        )


async def release(conn: AsyncConnection, owner: str, partitions: Collection[int] | None) -> None:
    """Hand partitions back (None: all, and leave the members too)."""
    query = sa.update(detector_partitions).where(detector_partitions.c.owner == owner)
    if partitions is not None:
        query = query.where(detector_partitions.c.partition.in_(sorted(partitions)))
    await conn.execute(query.values(owner=None, expires_at=None))
    if partitions is None:
        await conn.execute(sa.delete(detector_members).where(detector_members.c.owner == owner))


async def _ensure_partitions(conn: AsyncConnection) -> None:
    count = await conn.scalar(sa.select(sa.func.count()).select_from(detector_partitions))
    if count == PARTITIONS:
        return
    stmt = upsert(conn, detector_partitions).on_conflict_do_nothing(index_elements=["partition"])
    await conn.execute(stmt, [{"partition": p, "read_to": 0} for p in range(PARTITIONS)])
