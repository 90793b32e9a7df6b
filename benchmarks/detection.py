"""Detection benchmark: labelled simulated incidents and normal days through the whole pipeline.

Simulates N homes for D days (scenario `benchmark`: ten ordinary days for the learned rules to
learn from, then a case every three days per home, every incident type and hard normal day in
turn), marks the simulator's away periods through the same store and engine calls the API
uses, replays the stream through normalisers, rules and alerts on event time (`Replay`, as
`iot-gateway replay` does, nothing sent), and scores the alerts against the labels:

- detection rate and delay per incident type (median, worst); for incapacitation the delay is
  also given from the moment the absence could first be seen (the later of the onset and the
  elder's usual wake time that day), since nothing distinguishes sleep from collapse before;
  an undetected incident the run ends too soon after to be detectable (HORIZON) is left out;
- false alarms per rule: alerts outside every alarm incident of their household (a grace hour
  after the incident's end), per household-day on normal days (away days included).

    python benchmarks/detection.py --households 40 --days 21 [--json results.json]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.alerts.policy import INACTIVITY_RULES
from gateway.care.households import HouseholdIn, create_household
from gateway.clock import ManualClock
from gateway.config import Settings
from gateway.replay import Replay, mark_away
from gateway.store.alerts import AlertRecord, list_alerts
from gateway.store.paging import Window
from simulators import Neighbourhood
from simulators.household import local_midnight
from simulators.model import ALARM_TYPES, Incident
from simulators.routine import draw_profile, wake_and_sleep

# Which rules detect which incident type (the first of them to open counts).
DETECTED_BY: dict[str, frozenset[str]] = {
    "smoke": frozenset({"smoke_alarm"}),
    "sos": frozenset({"call_button"}),
    "fall": frozenset({"fall_detected"}),
    "incapacitation": frozenset({"missed_routine", "no_water_use", "no_power_use"}),
    "water_leak": frozenset({"water_leak"}),
    "dead_device": frozenset({"device_offline"}),
    "last_will": frozenset({"device_offline"}),
    "abnormal_vitals": frozenset({"abnormal_vitals"}),
    "low_battery": frozenset({"low_battery"}),
}
GRACE = timedelta(hours=1)
"""Alerts this long after an incident ends still belong to it (a meter's next report)..."""
INACTIVITY_GRACE = timedelta(hours=12)
CHECKIN_ANSWER_RATE = 0.9
"""Assumed share of check-in calls an elder at home and well answers with 1."""
"""...and for incapacitation, a window of the inactivity rules: the little water used in the
first hours after recovering still says something happened."""
DAY = timedelta(days=1)
# How long after it becomes visible each incident can take to be detected by design (the
# longest late bound, a continuous-flow window, the longest silence allowed). An incident the
# run ends sooner after is left out of the rates, and counted as cut off.
HORIZON: dict[str, timedelta] = {
    "incapacitation": timedelta(hours=3),
    "water_leak": timedelta(hours=2),
    "dead_device": timedelta(hours=26),
}
DEFAULT_HORIZON = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class Outcome:
    incident: Incident
    alert: AlertRecord | None
    delay_s: float | None
    visible_delay_s: float | None
    """Incapacitation: the delay from when the absence could first be seen."""


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def visible_from(hood: Neighbourhood, incident: Incident) -> float:
    """When an incident could first be noticed: for incapacitation, not before the elder would
    usually have got up that day (the simulator knows the day's planned wake time)."""
    if incident.type != "incapacitation":
        return incident.start
    profile = draw_profile(hood.seed, incident.household_id)
    midnight = local_midnight(incident.start)
    wake, _ = wake_and_sleep(profile, hood.seed, incident.household_id, midnight)
    return max(incident.start, float(wake))


async def simulate_and_replay(
    households: int, days: int, seed: int, folder: Path
) -> tuple[Neighbourhood, list[AlertRecord], dict[str, Any]]:
    start = datetime(2026, 10, 1, tzinfo=UTC)
    hood = Neighbourhood(households, seed=seed, start=start, days=days, scenario="benchmark")
    settings = Settings(
        database={"url": f"sqlite+aiosqlite:///{folder / 'bench.db'}"},
        mqtt={"url": "mqtt://127.0.0.1:1"},  # never connected: the replay feeds the pipeline
    )
    async with Replay(settings, ManualClock(start), io.StringIO()) as replay:
        core = replay.core
        async with core.db.begin() as conn:
            for body in hood.registrations():
                await create_household(conn, HouseholdIn.model_validate(body), start)
        for hid in hood.household_ids:
            await core.household_changed(hid)
        # What an operator does through POST /api/households/{id}/away.
        await mark_away(core, hood.incidents)
        began = time.perf_counter()
        report = await replay.run(hood.messages())
        wall = time.perf_counter() - began
        async with core.db.connect() as conn:
            alerts = (await list_alerts(conn, window=Window(limit=1_000_000))).items
    stats = {"messages": report.messages, "readings": report.readings, "wall_s": round(wall, 1)}
    return hood, sorted(alerts, key=lambda a: a.opened_at), stats


def score(
    hood: Neighbourhood,
    alerts: list[AlertRecord],
    days: int,
    checkin_answer_rate: float = CHECKIN_ANSWER_RATE,
) -> dict[str, Any]:
    by_home: dict[str, list[AlertRecord]] = defaultdict(list)
    for alert in alerts:
        by_home[alert.household_id].append(alert)
    sim_end = _dt(hood.end_ts)
    outcomes: list[Outcome] = []
    alarm_windows: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    cut_off: Counter[str] = Counter()
    for incident in hood.incidents:
        if not incident.alarm:
            continue
        begins = _dt(incident.start)
        horizon = HORIZON.get(incident.type, DEFAULT_HORIZON)
        censored = _dt(visible_from(hood, incident)) + horizon > sim_end
        ends = _dt(incident.end) if incident.end is not None else sim_end
        grace = INACTIVITY_GRACE if incident.type == "incapacitation" else GRACE
        alarm_windows[incident.household_id].append((begins - timedelta(minutes=1), ends + grace))
        rules = DETECTED_BY[incident.type]
        found = next(
            (
                a
                for a in by_home[incident.household_id]
                if a.rule_id in rules
                and begins - timedelta(minutes=1) <= a.opened_at <= ends + grace
                and (
                    incident.device_id is None
                    or a.rule_id not in _DEVICE_RULES
                    or a.device_id == incident.device_id
                )
            ),
            None,
        )
        if censored and found is None:
            cut_off[incident.type] += 1
            continue
        delay = (found.opened_at - begins).total_seconds() if found else None
        visible = (
            (found.opened_at - _dt(visible_from(hood, incident))).total_seconds() if found else None
        )
        outcomes.append(Outcome(incident, found, delay, visible))

    false_alarms: Counter[str] = Counter()
    false_examples: dict[str, list[str]] = defaultdict(list)
    # The check-in call (issue 10): an inactivity false alarm is first a call to the elder. Out
    # of the home (a day out, away) nobody answers it; at home and well, the elder answers 1
    # with probability `checkin_answer_rate` (an assumption, not something simulated).
    out_of_home: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for i in hood.incidents:
        if i.type in ("day_out", "away"):
            ends = _dt(i.end) if i.end is not None else sim_end
            out_of_home[i.household_id].append((_dt(i.start), ends))
    checkins = answered = 0.0
    for alert in alerts:
        windows = alarm_windows.get(alert.household_id, [])
        if any(lo <= alert.opened_at <= hi for lo, hi in windows):
            continue
        false_alarms[alert.rule_id] += 1
        if alert.rule_id in INACTIVITY_RULES:
            checkins += 1
            away = out_of_home.get(alert.household_id, [])
            if not any(lo <= alert.opened_at <= hi for lo, hi in away):
                answered += checkin_answer_rate
        if len(false_examples[alert.rule_id]) < 5:
            false_examples[alert.rule_id].append(
                f"{alert.household_id} {alert.device_id} {alert.opened_at:%m-%d %H:%M}Z "
                f"{alert.summary} ({_labels_near(hood, alert)})"
            )

    # Normal household-days: days (of each home) that no alarm incident touches.
    abnormal = 0.0
    for hid, windows in alarm_windows.items():
        days_touched = set()
        for lo, hi in windows:
            day = lo.date()
            while day <= hi.date():
                days_touched.add((hid, day))
                day += DAY
        abnormal += len(days_touched)
    household_days = len(hood.household_ids) * days
    normal_days = household_days - abnormal

    per_type: dict[str, Any] = {}
    for kind in ALARM_TYPES:
        rows = [o for o in outcomes if o.incident.type == kind]
        if not rows:
            continue
        delays = [o.delay_s for o in rows if o.delay_s is not None]
        visible = [o.visible_delay_s for o in rows if o.visible_delay_s is not None]
        entry: dict[str, Any] = {
            "incidents": len(rows),
            "cut_off_by_end_of_run": cut_off[kind],
            "detected": len(delays),
            "rate": round(len(delays) / len(rows), 3),
            "median_delay_s": round(statistics.median(delays), 1) if delays else None,
            "worst_delay_s": round(max(delays), 1) if delays else None,
            "by_rule": dict(Counter(o.alert.rule_id for o in rows if o.alert)),
            "missed": [
                f"{o.incident.household_id} {_dt(o.incident.start):%m-%d %H:%M}Z"
                for o in rows
                if o.alert is None
            ][:10],
        }
        if kind == "incapacitation":
            entry["median_delay_from_usual_wake_s"] = (
                round(statistics.median(visible), 1) if visible else None
            )
            entry["worst_delay_from_usual_wake_s"] = round(max(visible), 1) if visible else None
        per_type[kind] = entry
    normal_types = Counter(i.type for i in hood.incidents if not i.alarm)
    # Hard normal days: how many of them raised an alarm (a false one), per type.
    hard: dict[str, Any] = {}
    on_hard = 0
    for kind in sorted(normal_types):
        cases = [i for i in hood.incidents if i.type == kind]
        raised = 0
        for case in cases:
            lo = _dt(case.start) - timedelta(hours=2)
            hi = (_dt(case.end) if case.end is not None else sim_end) + GRACE
            found = [
                a
                for a in by_home[case.household_id]
                if lo <= a.opened_at <= hi
                and not any(
                    w_lo <= a.opened_at <= w_hi
                    for w_lo, w_hi in alarm_windows.get(case.household_id, [])
                )
            ]
            raised += bool(found)
            on_hard += len(found)
        hard[kind] = {"days": len(cases), "with_false_alarm": raised}
    ordinary_days = normal_days - sum(normal_types.values())
    return {
        "households": len(hood.household_ids),
        "days": days,
        "household_days": household_days,
        "normal_household_days": round(normal_days),
        "hard_normal_days": dict(normal_types),
        "alerts": dict(Counter(a.rule_id for a in alerts)),
        "detection": per_type,
        "false_alarms": dict(false_alarms),
        "false_alarms_per_household_day": round(sum(false_alarms.values()) / normal_days, 4),
        "checkin_answer_rate_assumed": checkin_answer_rate,
        "checkin_calls_per_household_day": round(checkins / normal_days, 4),
        "checkins_answered_well_per_household_day": round(answered / normal_days, 4),
        "false_alarms_reaching_a_person_per_household_day": round(
            (sum(false_alarms.values()) - answered) / normal_days, 4
        ),
        "hard_normal_day_outcomes": hard,
        "false_alarms_on_ordinary_days_per_household_day": round(
            (sum(false_alarms.values()) - on_hard) / ordinary_days, 4
        ),
        "false_alarms_per_household_day_by_rule": {
            rule: round(n / normal_days, 4) for rule, n in sorted(false_alarms.items())
        },
        "false_alarm_examples": dict(false_examples),
    }


_DEVICE_RULES = frozenset({"device_offline", "low_battery", "water_leak"})


def _labels_near(hood: Neighbourhood, alert: AlertRecord) -> str:
    """The household's labelled cases within a day of the alert, to explain false alarms."""
    near = [
        f"{i.type}@{_dt(i.start):%m-%d %H:%M}Z"
        for i in hood.incidents
        if i.household_id == alert.household_id
        and abs(i.start - alert.opened_at.timestamp()) < DAY.total_seconds()
    ]
    return ", ".join(near) or "no label nearby"


def _fmt_delay(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def print_table(result: dict[str, Any], stats: dict[str, Any]) -> None:
    print(
        f"{result['households']} homes x {result['days']} days "
        f"({stats['messages']} messages replayed in {stats['wall_s']} s); "
        f"normal household-days {result['normal_household_days']}, "
        f"hard normal days {result['hard_normal_days']}"
    )
    print(f"{'incident':<16} {'n':>3} {'detected':>8} {'median':>8} {'worst':>8}  rules")
    for kind, row in result["detection"].items():
        median = _fmt_delay(row["median_delay_s"])
        worst = _fmt_delay(row["worst_delay_s"])
        print(
            f"{kind:<16} {row['incidents']:>3} {row['rate']:>8.0%} {median:>8} {worst:>8}  "
            f"{row['by_rule']}"
        )
        if kind == "incapacitation":
            print(
                f"{'  from usual wake':<16} {'':>3} {'':>8} "
                f"{_fmt_delay(row['median_delay_from_usual_wake_s']):>8} "
                f"{_fmt_delay(row['worst_delay_from_usual_wake_s']):>8}"
            )
        if row["missed"]:
            print(f"{'':<16} missed: {', '.join(row['missed'])}")
        if row["cut_off_by_end_of_run"]:
            print(f"{'':<16} left out: {row['cut_off_by_end_of_run']} began too near the end")
    print(
        f"false alarms: {result['false_alarms']} = "
        f"{result['false_alarms_per_household_day']} per household-day; check-in calls "
        f"{result['checkin_calls_per_household_day']}, answered well "
        f"{result['checkins_answered_well_per_household_day']} (at an assumed "
        f"{result['checkin_answer_rate_assumed']:.0%} of elders at home); reaching a person "
        f"{result['false_alarms_reaching_a_person_per_household_day']} per household-day"
    )
    print(
        f"  on ordinary days: {result['false_alarms_on_ordinary_days_per_household_day']} per "
        f"household-day; hard normal days with an alarm: {result['hard_normal_day_outcomes']}"
    )
    for rule, examples in result["false_alarm_examples"].items():
        for example in examples:
            print(f"  {rule}: {example}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--households", type=int, default=40)
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write the full result here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="detection-bench-") as folder:
        hood, alerts, stats = asyncio.run(
            simulate_and_replay(args.households, args.days, args.seed, Path(folder))
        )
    result = score(hood, alerts, args.days)
    result["run"] = stats
    print_table(result, stats)
    if args.json:
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
