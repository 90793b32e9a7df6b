"""Skipping the ticks of rules that said they would find nothing changes no finding.

`no_water_use`, `no_power_use` and `device_offline` tell the engine, after a tick that found
nothing, until when they will go on finding nothing (`quiet_until`); the engine skips their ticks
until then.
Two engines hear the same simulated homes (incidents included: dead devices, incapacitation, a
day out, away) and tick every minute: one whose rules say nothing of quiet, one whose rules do.
Their findings must be the same, in the same order, while the second runs far fewer ticks.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import pytest

from gateway.config import default_sources
from gateway.ingest.decode import decode
from gateway.ingest.mqtt import InboundMessage
from gateway.ingest.sources import SourceTable
from gateway.models import DeviceKind, Finding, FindingAction, Metric, Reading
from gateway.rules.activity import AwayPeriod
from gateway.rules.base import HouseholdState, Rule, RuleConfig
from gateway.rules.catalogue import RulesConfig, build_rules
from gateway.rules.connectivity import DeviceOffline
from gateway.rules.engine import RuleEngine
from gateway.rules.routine import NoWaterUse
from simulators import Neighbourhood

START = datetime(2026, 10, 5, tzinfo=UTC)
TICK = timedelta(minutes=1)


class Unsettled:
    """A rule as it is, but without `quiet_until` and ticked every time, even a rule that
    says ticks find nothing for it (`ticks` False)."""

    per_message: ClassVar[bool]
    ticks: ClassVar[bool]

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.id = rule.id
        self.metrics = rule.metrics
        self.per_message = rule.per_message
        self.ticks = True

    @property
    def config(self) -> RuleConfig:
        return self.rule.config

    def on_reading(self, state: HouseholdState, reading: Reading) -> list[Finding]:
        return self.rule.on_reading(state, reading)

    def on_tick(self, state: HouseholdState, now: datetime) -> list[Finding]:
        return self.rule.on_tick(state, now)


class CountingTicks(Unsettled):
    """The rule as it is, `ticks` and `quiet_until` included, counting the ticks it runs."""

    ticks_run: ClassVar[Counter[str]] = Counter()

    def __init__(self, rule: Rule) -> None:
        super().__init__(rule)
        self.ticks = rule.ticks

    def on_tick(self, state: HouseholdState, now: datetime) -> list[Finding]:
        CountingTicks.ticks_run[self.id] += 1
        return self.rule.on_tick(state, now)

    def quiet_until(self, state: HouseholdState, now: datetime) -> datetime | None:
        quiet = getattr(self.rule, "quiet_until", None)
        return quiet(state, now) if quiet is not None else None


class Book:
    """The alert book's part, in memory: one active alert per key; the engine hears of it."""

    def __init__(self, engine: RuleEngine) -> None:
        self.engine = engine
        self.active: set[tuple[str, str, str]] = set()

    def apply(self, findings: list[Finding]) -> None:
        for f in findings:
            key = (f.household_id, f.rule_id, f.device_id)
            if f.action is FindingAction.OPEN and key not in self.active:
                self.active.add(key)
                self.engine.alert_opened(*key, f.ts, f.evidence)
            elif f.action is FindingAction.CLEAR and f.resolves and key in self.active:
                self.active.discard(key)
                self.engine.alert_closed(*key)


def readings(hood: Neighbourhood) -> Iterator[Reading]:
    sources = SourceTable(default_sources())
    for n, m in enumerate(hood.messages()):
        if m.retain:
            continue
        message = InboundMessage(
            m.topic, m.payload.encode(), 1, n, False, datetime.fromtimestamp(m.ts, UTC)
        )
        decoded, _ = decode(message, sources)
        if decoded is not None:
            yield from decoded.readings


Seen = tuple[str, str, str, FindingAction, datetime]


def run(engine: RuleEngine, hood: Neighbourhood) -> list[Seen]:
    """Feed the stream, ticking at every whole minute before the readings after it."""
    book = Book(engine)
    for hid in hood.household_ids:
        engine.state(hid)
        # A smoke detector fitted and never heard: "never reported since installation".
        engine.note_device(hid, "fitted-1", kind=DeviceKind.SMOKE_DETECTOR, registered_at=START)
    # A day away, marked ahead, for the first household.
    first = hood.household_ids[0]
    away = AwayPeriod(START + timedelta(days=1, hours=8), START + timedelta(days=2))
    engine.set_away(first, [away])
    seen: list[Seen] = []

    def note(findings: list[Finding]) -> None:
        book.apply(findings)
        seen.extend((f.household_id, f.rule_id, f.device_id, f.action, f.ts) for f in findings)

    next_tick = START + TICK
    for r in readings(hood):
        while next_tick <= r.ts:
            note(engine.on_tick(next_tick))
            next_tick += TICK
        if r.metric is not Metric.ONLINE or r.value is not True:
            note(engine.on_activity(r))
    return seen


@pytest.mark.parametrize("scenario", ["mixed", "dead_device"])
def test_skipped_ticks_find_the_same(scenario: str) -> None:
    hood = Neighbourhood(6, seed=4, start=START, days=3, scenario=scenario)
    rules = build_rules(RulesConfig())
    every_tick = run(RuleEngine([Unsettled(r) for r in rules]), hood)
    CountingTicks.ticks_run.clear()
    settling = run(RuleEngine([CountingTicks(r) for r in rules]), hood)

    assert settling == every_tick
    assert any(rule == "device_offline" for _, rule, *_ in every_tick)
    minutes = 3 * 24 * 60 * len(hood.household_ids)
    # Both ask for far fewer ticks than there were minutes; others ask at every one, and the
    # rules whose ticks find nothing are never asked.
    assert CountingTicks.ticks_run[NoWaterUse.id] < minutes / 4
    assert CountingTicks.ticks_run[DeviceOffline.id] < minutes / 4
    assert CountingTicks.ticks_run["no_power_use"] < minutes / 4
    assert CountingTicks.ticks_run["missed_routine"] > 0.99 * minutes  # (says nothing)
    assert CountingTicks.ticks_run["smoke_alarm"] == 0


def quiet_homes(seed: int, homes: int, days: int) -> Iterator[Reading]:
    """Homes with a water meter every 10 minutes and a power meter every 5 (half the homes
    without the water meter), used at random in the daytime, each falling silent (nothing
    used, the meters still reporting) for a random day and a half: many inactivity alerts."""
    rng = random.Random(seed)
    step = timedelta(minutes=5)
    silent = {
        f"Q{h}": START + timedelta(hours=rng.uniform(12, 24 * (days - 2))) for h in range(homes)
    }
    water = dict.fromkeys(silent, 1000.0)
    at = START
    while at < START + timedelta(days=days):
        for home, stops in silent.items():
            asleep = not 7 <= (at.hour + 8) % 24 < 21  # Shanghai
            idle = stops <= at < stops + timedelta(hours=36) or asleep
            used = not idle and rng.random() < 0.15
            power = rng.uniform(800, 2000) if used else 60.0
            yield Reading(home, "power", DeviceKind.POWER_METER, Metric.POWER_W, power, "W", at)
            if int(home[1:]) % 2 == 0 and at.minute % 10 == 0:
                water[home] += rng.uniform(2, 12) if used else 0.0
                total = water[home]
                kind, metric = DeviceKind.WATER_METER, Metric.WATER_TOTAL_L
                yield Reading(home, "water", kind, metric, total, "L", at)
        at += step


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_skipped_ticks_find_the_same_on_quiet_homes(seed: int) -> None:
    def run_on(rules: list[Rule]) -> list[Seen]:
        engine = RuleEngine(rules)
        book = Book(engine)
        seen: list[Seen] = []
        next_tick = START + TICK
        for r in quiet_homes(seed, homes=6, days=4):
            while next_tick <= r.ts:
                found = engine.on_tick(next_tick)
                book.apply(found)
                seen += [(f.household_id, f.rule_id, f.device_id, f.action, f.ts) for f in found]
                next_tick += TICK
            found = engine.on_activity(r)
            book.apply(found)
            seen += [(f.household_id, f.rule_id, f.device_id, f.action, f.ts) for f in found]
        return seen

    rules = build_rules(RulesConfig())
    every_tick = run_on([Unsettled(r) for r in rules])
    settling = run_on(rules)

    assert settling == every_tick
    opened = Counter(rule for _, rule, _, action, _ in every_tick if action is FindingAction.OPEN)
    assert opened["no_water_use"] >= 2
    assert opened["no_power_use"] >= 2


def test_a_device_registered_asks_again() -> None:
    """A quiet computed before a device was fitted must not hide its silence."""
    engine = RuleEngine(build_rules(RulesConfig()))
    # A smoke detector heard now may stay silent for 25 hours: quiet until then.
    smoke = Reading("H1", "smoke", DeviceKind.SMOKE_DETECTOR, Metric.SMOKE, False, None, START)
    engine.on_activity(smoke)
    assert engine.on_tick(START + TICK) == []
    assert engine.state("H1").quiet  # device_offline's, until the smoke detector's 25 hours
    # A water meter fitted that never reports may stay silent for an hour only.
    fitted = START + timedelta(minutes=2)
    engine.note_device("H1", "water", kind=DeviceKind.WATER_METER, registered_at=fitted)
    found = [
        f
        for minutes in range(3, 3 * 60)
        for f in engine.on_tick(START + timedelta(minutes=minutes))
        if f.rule_id == "device_offline"
    ]
    assert {f.device_id for f in found} == {"water"}  # (repeated: no book here)
    assert found[0].ts == fitted + timedelta(hours=1, minutes=1)


def test_a_device_heard_after_its_silence_was_closed_asks_again() -> None:
    """A person closed the alert about a silent plug; heard again and then silent again, it
    is a new silence, alerted although the quiet was computed while the plug was excluded."""
    engine = RuleEngine(build_rules(RulesConfig()))
    engine.note_device("H1", "plug", kind=DeviceKind.POWER_METER, source="tasmota")

    def plug(at: datetime) -> Reading:
        return Reading("H1", "plug", DeviceKind.POWER_METER, Metric.POWER_W, 5.0, "W", at)

    engine.on_activity(plug(START))
    smoke = Reading("H1", "smoke", DeviceKind.SMOKE_DETECTOR, Metric.SMOKE, False, None, START)
    engine.on_activity(smoke)

    def offline(minutes: range) -> list[Finding]:
        return [
            f
            for m in minutes
            for f in engine.on_tick(START + timedelta(minutes=m))
            if f.rule_id == "device_offline"
        ]

    first = offline(range(1, 30))[0]  # the plug may be silent for 15 minutes
    engine.alert_opened("H1", first.rule_id, "plug", first.ts, first.evidence)
    engine.alert_closed("H1", first.rule_id, "plug")  # "battery ordered": closed while silent
    assert offline(range(30, 120)) == []  # the same silence is not alerted again
    assert engine.state("H1").quiet  # quiet until the smoke detector's 25 hours are up

    engine.on_activity(plug(START + timedelta(minutes=120)))
    again = offline(range(121, 150))
    assert again
    assert again[0].ts == START + timedelta(minutes=136)
