"""The stream: every message normalises without dead letters, in order, the same for a seed."""

from __future__ import annotations

import hashlib
import itertools
import re
from collections import Counter
from datetime import datetime

from gateway.care.households import HouseholdIn
from simulators import Format, Message, Neighbourhood
from tests.unit.simulators.runs import START, TABLE, Run, decode


def _digest(messages: list[Message]) -> str:
    h = hashlib.sha256()
    for m in messages:
        h.update(f"{m.ts}|{m.topic}|{m.payload}|{m.retain}\n".encode())
    return h.hexdigest()


def _first(nb: Neighbourhood, n: int = 3000) -> list[Message]:
    return list(itertools.islice(nb.messages(), n))


def test_every_message_normalises_without_dead_letters(mixed_run: Run):
    letters = [
        (d.message.topic, d.message.payload, d.dead_letter)
        for d in mixed_run.decoded
        if d.dead_letter
    ]
    assert letters == []
    assert all(d.readings for d in mixed_run.decoded), "every message carries a reading"


def test_readings_take_the_simulated_time(mixed_run: Run):
    for d in mixed_run.decoded:
        for r in d.readings:
            assert r.ts.timestamp() == d.message.ts


def test_every_format_and_the_design_topics_are_used(mixed_run: Run):
    formats = Counter()
    for d in mixed_run.decoded:
        match = TABLE.match(d.message.topic)
        assert match is not None
        formats[match.format] += 1
        assert d.message.topic.startswith(f"homes/{match.household_id}/")
    assert set(formats) == {f.value for f in Format}


def test_an_ordinary_week_with_chance_incidents_normalises_too():
    nb = Neighbourhood(12, seed=21, start=START, days=2.0, incident_rate=0.5)
    assert nb.incidents
    assert [d.dead_letter for d in map(decode, nb.messages()) if d.dead_letter] == []


def test_the_stream_is_in_time_order_and_within_the_run(mixed_run: Run):
    times = [d.message.ts for d in mixed_run.decoded]
    assert times == sorted(times)
    assert mixed_run.nb.start_ts <= times[0]
    assert times[-1] < mixed_run.nb.end_ts


def test_availability_is_published_retained_at_the_start(mixed_run: Run):
    retained = [d.message for d in mixed_run.decoded if d.message.retain]
    assert retained
    assert all(re.search(r"/(status|availability|LWT|online)$", m.topic) for m in retained)
    assert {m.ts for m in retained[:10]} == {mixed_run.nb.start_ts}


def test_the_same_seed_gives_the_same_stream_and_another_seed_another():
    def run(seed: int) -> Neighbourhood:
        return Neighbourhood(5, seed=seed, start=START, days=1.0, scenario="mixed")

    assert _digest(_first(run(1))) == _digest(_first(run(1)))
    assert _digest(_first(run(1))) != _digest(_first(run(2)))
    assert run(1).incidents == run(1).incidents


def test_without_timestamps_payloads_leave_the_time_to_the_gateway():
    nb = Neighbourhood(6, seed=3, start=START, days=0.2, timestamps=False)
    for m in _first(nb, 2000):
        assert not re.search(r'"(ts|last_seen|timestamp)"', m.payload), m.payload


def test_registrations_are_valid_household_bodies():
    nb = Neighbourhood(8, seed=4, start=datetime(2026, 3, 2, 8, 0), days=0.5)
    bodies = nb.registrations()
    assert [b["id"] for b in bodies] == nb.household_ids == [f"SIM{i:04d}" for i in range(1, 9)]
    parsed = [HouseholdIn.model_validate(b) for b in bodies]
    assert len({p.address.township for p in parsed}) == 1
    assert len({p.address.village for p in parsed}) > 1
    assert all(re.fullmatch(r"[\u4e00-\u9fff]{2,4}", p.elder.name) for p in parsed)
    assert len({p.elder.phone for p in parsed}) == len(parsed)
    assert all(p.visitors and p.relatives for p in parsed)
