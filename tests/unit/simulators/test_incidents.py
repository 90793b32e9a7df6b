"""Every labelled incident shows in the stream at its labelled time, and only there."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from gateway.models import Metric, Reading
from simulators import INCIDENT_TYPES, Incident, Neighbourhood
from simulators.routine import MINUTE
from tests.unit.simulators.runs import START, Run, readings

# What the elder does; a closed door or an empty room is what heartbeats report.
ACTIVITY = {Metric.BUTTON, Metric.HEART_RATE_BPM, Metric.SPO2_PCT}


def _of(run: Run, incident: Incident, device: bool = False) -> list[Reading]:
    return [
        r
        for d in run.decoded
        for r in d.readings
        if r.household_id == incident.household_id
        and (not device or r.device_id == incident.device_id)
    ]


def _at(rs: list[Reading], metric: Metric, ts: float) -> list[Reading]:
    return [r for r in rs if r.metric is metric and r.ts.timestamp() == ts]


def _window(run: Run, incident: Incident) -> tuple[float, float]:
    return incident.start, incident.end if incident.end is not None else run.nb.end_ts


def _water_used(rs: list[Reading], lo: float, hi: float) -> float:
    totals = [
        float(r.value)
        for r in rs
        if r.metric is Metric.WATER_TOTAL_L and lo <= r.ts.timestamp() < hi
    ]
    return totals[-1] - totals[0] if totals else 0.0


def _smoke(run: Run, i: Incident) -> None:
    rs = _of(run, i, device=True)
    assert [r.value for r in _at(rs, Metric.SMOKE, i.start)] == [True]
    assert all(
        r.value is False for r in rs if r.metric is Metric.SMOKE and r.ts.timestamp() < i.start
    )


def _sos(run: Run, i: Incident) -> None:
    assert [r.value for r in _at(_of(run, i, device=True), Metric.BUTTON, i.start)] == ["sos"]


def _fall(run: Run, i: Incident) -> None:
    assert [r.value for r in _at(_of(run, i, device=True), Metric.FALL, i.start)] == [True]
    _nothing_done(run, i)


def _nothing_done(run: Run, i: Incident) -> None:
    lo, hi = _window(run, i)
    # A fall is seen by its sensor when it happens: the quiet starts just after.
    rs = [r for r in _of(run, i) if lo + 1 <= r.ts.timestamp() < hi]
    assert not [r for r in rs if r.metric in ACTIVITY], "the elder did something"
    assert not [r for r in rs if r.metric is Metric.DOOR_OPEN and r.value is True]
    if i.type != "fall":  # who has fallen lies where the radar sees them
        assert not [r for r in rs if r.metric is Metric.PRESENCE and r.value is True]
    assert _water_used(rs, lo, hi) == 0
    profile = run.nb.spec(i.household_id).profile
    idle = profile.base_w + profile.fridge_w + 1
    assert all(float(r.value) <= idle for r in rs if r.metric is Metric.POWER_W)


def _incapacitation(run: Run, i: Incident) -> None:
    _nothing_done(run, i)


def _water_leak(run: Run, i: Incident) -> None:
    lo, hi = _window(run, i)
    rs = _of(run, i, device=True)
    totals = [(r.ts.timestamp(), float(r.value)) for r in rs if r.metric is Metric.WATER_TOTAL_L]
    during = [(t, v) for t, v in totals if lo + 5 * MINUTE <= t < hi]
    # A leak never stops: every report in the window shows more water than the one before.
    assert all(b > a for (_, a), (_, b) in itertools.pairwise(during))
    assert _water_used(rs, lo, hi) >= 2 * (hi - lo) / 60 * 0.9


def _dead(run: Run, i: Incident) -> None:
    lo, hi = _window(run, i)
    rs = [r for r in _of(run, i, device=True) if lo <= r.ts.timestamp() < hi]
    assert all(r.metric is Metric.ONLINE for r in rs)
    if i.type == "last_will":
        assert [r.value for r in _at(rs, Metric.ONLINE, i.start)] == [False]
        will = [d.message for d in run.decoded if d.readings and d.readings[0] in rs]
        assert will
        assert all(m.retain for m in will)
    else:
        assert rs == []
    before = [
        r
        for r in _of(run, i, device=True)
        if r.ts.timestamp() < lo and r.metric is not Metric.ONLINE
    ]
    assert before, "the device was alive before"


def _vitals(run: Run, i: Incident) -> None:
    got = {
        r.metric: float(r.value) for r in _of(run, i, device=True) if r.ts.timestamp() == i.start
    }
    assert (
        not 45 <= got[Metric.HEART_RATE_BPM] <= 120
        or got[Metric.SPO2_PCT] < 90
        or got[Metric.BP_SYSTOLIC_MMHG] > 180
    )


def _low_battery(run: Run, i: Incident) -> None:
    rs = _of(run, i, device=True)
    assert [float(r.value) < 15 for r in _at(rs, Metric.BATTERY_PCT, i.start)] == [True]
    assert all(
        float(r.value) >= 15
        for r in rs
        if r.metric is Metric.BATTERY_PCT and r.ts.timestamp() < i.start
    )


def _late_morning(run: Run, i: Incident) -> None:
    assert i.end is not None
    rs = _of(run, i)
    assert _water_used(rs, i.start, i.end) == 0
    assert _water_used(rs, i.end, i.end + 45 * MINUTE) > 0


def _gone_out(run: Run, i: Incident) -> None:
    rs = _of(run, i)
    assert [r.value for r in _at(rs, Metric.DOOR_OPEN, i.start)] == [True]
    lo, hi = _window(run, i)
    assert _water_used(rs, lo + 10 * MINUTE, hi) == 0
    if i.end is not None:
        assert [r.value for r in _at(rs, Metric.DOOR_OPEN, i.end)] == [True]
    if i.type == "away":
        assert [(p.household_id, p.start) for p in run.nb.away_periods] == [
            (i.household_id, i.start)
        ]


CHECKS: dict[str, Callable[[Run, Incident], None]] = {
    "smoke": _smoke,
    "sos": _sos,
    "fall": _fall,
    "incapacitation": _incapacitation,
    "water_leak": _water_leak,
    "dead_device": _dead,
    "last_will": _dead,
    "abnormal_vitals": _vitals,
    "low_battery": _low_battery,
    "late_morning": _late_morning,
    "day_out": _gone_out,
    "away": _gone_out,
}


def test_a_mixed_run_labels_every_type_once(mixed_run: Run):
    assert sorted(i.type for i in mixed_run.nb.incidents) == sorted(INCIDENT_TYPES)
    assert {i.type for i in mixed_run.nb.incidents if not i.alarm} == {
        "late_morning",
        "day_out",
        "away",
    }
    for i in mixed_run.nb.incidents:
        assert mixed_run.nb.start_ts <= i.start < mixed_run.nb.end_ts


@pytest.mark.parametrize("kind", INCIDENT_TYPES)
def test_each_incident_is_in_the_stream_where_labelled(mixed_run: Run, kind: str):
    (incident,) = [i for i in mixed_run.nb.incidents if i.type == kind]
    CHECKS[kind](mixed_run, incident)


@pytest.mark.parametrize("scenario", ["smoke", "sos", "late_morning"])
def test_a_scenario_puts_its_case_in_the_first_household_on_the_first_day(scenario: str):
    nb = Neighbourhood(3, seed=2, start=START, days=1.0, scenario=scenario)
    (incident,) = nb.incidents
    assert incident.household_id == "SIM0001"
    assert incident.type == scenario
    assert nb.start_ts <= incident.start < nb.start_ts + 86400


def test_an_offset_puts_the_case_right_after_the_start():
    nb = Neighbourhood(2, seed=2, start=START, days=0.5, scenario="smoke", incident_offset_s=60)
    (incident,) = nb.incidents
    assert incident.start == nb.start_ts + 60
    assert readings(m for m in nb.messages() if m.ts == incident.start)


def test_ordinary_runs_have_incidents_at_about_the_rate_asked():
    nb = Neighbourhood(40, seed=9, start=START, days=5.0, incident_rate=0.1)
    assert 8 <= len(nb.incidents) <= 35


def test_an_unknown_scenario_is_refused():
    with pytest.raises(ValueError, match="unknown scenario"):
        Neighbourhood(1, start=START, scenario="earthquake")
