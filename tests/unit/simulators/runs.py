"""Simulator output read back through the gateway's real sources and normalisers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from gateway.config import default_sources
from gateway.devices import DeviceMessage, Rejected, normaliser_for
from gateway.ingest.sources import SourceTable
from gateway.models import Reading
from simulators import Message, Neighbourhood, Role
from simulators.encoders import ZONE
from simulators.household import HouseholdStream

START = datetime(2026, 3, 2, tzinfo=ZONE)  # a Monday, local midnight
TABLE = SourceTable(default_sources())
QUIET_DAYS = 7


@dataclass(frozen=True)
class Decoded:
    message: Message
    readings: list[Reading]
    dead_letter: str | None
    """Why the gateway would keep (part of) the message as a dead letter, or None."""


def decode(message: Message) -> Decoded:
    """What the gateway makes of one message, received at its simulated time."""
    match = TABLE.match(message.topic)
    if match is None:
        return Decoded(message, [], "no_source")
    device_message = DeviceMessage(
        match.household_id,
        match.device_id,
        match.subtopic,
        message.payload.encode(),
        datetime.fromtimestamp(message.ts, UTC),
        match.zone,
    )
    try:
        out = normaliser_for(match.format)(device_message)
    except Rejected as exc:
        return Decoded(message, [], f"{exc.code}: {exc.reason}")
    return Decoded(message, out.readings, "; ".join(out.problems) or None)


def readings(messages: Iterable[Message]) -> list[Reading]:
    return [r for m in messages for r in decode(m).readings]


def role_stream(nb: Neighbourhood, household_id: str, roles: set[Role]) -> list[Message]:
    """One household's messages from the devices of `roles` only (quicker for statistics)."""
    spec = nb.spec(household_id)
    spec = replace(spec, devices=tuple(d for d in spec.devices if d.role in roles))
    stream = HouseholdStream(
        spec, seed=nb.seed, prefix=nb.prefix, stamp=True, start=nb.start_ts, end=nb.end_ts
    )
    return list(stream)


@dataclass(frozen=True)
class Run:
    nb: Neighbourhood
    decoded: list[Decoded]
