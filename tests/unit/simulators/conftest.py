"""Shared runs of the simulator for the tests of this folder."""

from __future__ import annotations

import pytest

from gateway.models import Metric
from simulators import Neighbourhood, Role
from tests.unit.simulators.runs import QUIET_DAYS, START, Run, decode, readings, role_stream


@pytest.fixture(scope="session")
def mixed_run() -> Run:
    """18 homes for a day, "mixed": every incident type once, every third home ordinary."""
    nb = Neighbourhood(18, seed=5, start=START, days=1.0, scenario="mixed")
    return Run(nb, [decode(m) for m in nb.messages()])


@pytest.fixture(scope="session")
def quiet_week() -> Neighbourhood:
    """20 homes for a week of ordinary days (no incidents), for the routine's statistics."""
    return Neighbourhood(20, seed=11, start=START, days=QUIET_DAYS, incident_rate=0.0)


@pytest.fixture(scope="session")
def water_totals(quiet_week: Neighbourhood) -> dict[str, list[tuple[float, float]]]:
    """Each quiet home's water meter totals (time, litres), as the gateway reads them."""
    out = {}
    for hid in quiet_week.household_ids:
        water = readings(role_stream(quiet_week, hid, {Role.WATER}))
        out[hid] = [
            (r.ts.timestamp(), float(r.value)) for r in water if r.metric is Metric.WATER_TOTAL_L
        ]
    return out
