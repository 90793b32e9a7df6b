"""The monthly visit rate (GET /api/reports/coverage, `iot-gateway report coverage`) over a real
database: a November of visits across two villages of one township, and one elsewhere."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
import sqlalchemy as sa

from gateway.app import Gateway
from gateway.cli import main
from gateway.clock import ManualClock
from gateway.store.tables import households
from gateway.store.visits import VisitMethod, add_visit
from tests.integration.harness import api_client, offline_gateway, register

TOKEN = "test-token-0123456789"
NOW = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
EAST, WEST, NORTH = "东村", "西村", "北村"
LI = ("李敏", "+8613900000001")
WANG = ("王芳", "+8613900000002")
ZHAO = ("赵刚", "+8613900000003")
LONG_AGO = date(2026, 1, 1)

# id: (village, visitor, registered_on, left_on, created_at or None)
ELDERS: dict[str, tuple[str, tuple[str, str], date | None, date | None, datetime | None]] = {
    "A1": (EAST, LI, LONG_AGO, None, None),
    "A2": (EAST, LI, LONG_AGO, None, None),
    "A3": (EAST, WANG, LONG_AGO, None, None),
    # No registration date: in the programme from the day the record was made.
    "A4": (EAST, WANG, None, None, datetime(2026, 10, 1, tzinfo=UTC)),
    # Left during the month: still counted, and not visited.
    "A5": (EAST, LI, LONG_AGO, date(2026, 11, 20), None),
    # Left before the month; registered after it; recorded at 00:30 on 1 December local time.
    "AX1": (EAST, LI, LONG_AGO, date(2026, 10, 31), None),
    "AX2": (EAST, LI, date(2026, 12, 1), None, None),
    "AX3": (EAST, LI, None, None, datetime(2026, 11, 30, 16, 30, tzinfo=UTC)),
    "B1": (WEST, WANG, LONG_AGO, None, None),
    "B2": (WEST, WANG, LONG_AGO, None, None),
    "B3": (WEST, LI, LONG_AGO, None, None),
    "B4": (WEST, WANG, LONG_AGO, None, None),
    "C1": (NORTH, ZHAO, LONG_AGO, None, None),
}
# id: [(visited_at UTC, method, automatic)]
VISITS: dict[str, list[tuple[datetime, VisitMethod, bool]]] = {
    "A1": [(datetime(2026, 11, 10, 2, tzinfo=UTC), VisitMethod.HOME_VISIT, False)],
    "A2": [(datetime(2026, 11, 15, 3, tzinfo=UTC), VisitMethod.PHONE, False)],
    "A3": [(datetime(2026, 11, 20, 4, tzinfo=UTC), VisitMethod.VIDEO, False)],
    # 23:30 on 30 November in Asia/Shanghai.
    "A4": [(datetime(2026, 11, 30, 15, 30, tzinfo=UTC), VisitMethod.REMOTE_MONITORING, False)],
    "A5": [(datetime(2026, 10, 31, 2, tzinfo=UTC), VisitMethod.HOME_VISIT, False)],
    # 00:10 on 1 November in Asia/Shanghai (still 31 October in UTC).
    "B1": [(datetime(2026, 10, 31, 16, 10, tzinfo=UTC), VisitMethod.HOME_VISIT, False)],
    "B2": [(datetime(2026, 11, 5, 6, tzinfo=UTC), VisitMethod.PHONE, False)],
    # Filed by the gateway for an alert that cleared by itself: nobody was in contact.
    "B3": [(datetime(2026, 11, 8, 6, tzinfo=UTC), VisitMethod.REMOTE_MONITORING, True)],
    # 00:30 on 1 December in Asia/Shanghai: December's.
    "B4": [(datetime(2026, 11, 30, 16, 30, tzinfo=UTC), VisitMethod.HOME_VISIT, False)],
    "C1": [(datetime(2026, 11, 3, 6, tzinfo=UTC), VisitMethod.HOME_VISIT, False)],
}
UNVISITED_IN_TOWNSHIP = {"A5", "B3", "B4"}


async def seed(gateway: Gateway) -> None:
    for hid, (village, (name, phone), registered, left, created) in ELDERS.items():
        township = "北镇" if village == NORTH else "某镇"
        await register(
            gateway,
            {
                "id": hid,
                "elder": {"name": f"老人{hid}"},
                "address": {"county": "某县", "township": township, "village": village},
                "visitors": [{"name": name, "phone": phone}],
            },
        )
        values: dict[str, Any] = {"registered_on": registered, "left_on": left}
        if created is not None:
            values["created_at"] = created
        async with gateway.db.begin() as conn:
            await conn.execute(sa.update(households).where(households.c.id == hid).values(values))
    async with gateway.db.begin() as conn:
        for hid, visits in VISITS.items():
            for at, method, automatic in visits:
                await add_visit(
                    conn,
                    household_id=hid,
                    method=method,
                    visited_at=at,
                    visitor="李敏",
                    summary="探访",
                    details={"automatic": True} if automatic else {},
                    now=NOW,
                    by="test",
                )


@pytest.fixture
async def gateway(database_url: str, unique_id: str) -> AsyncIterator[Gateway]:
    async with offline_gateway(database_url, unique_id, clock=ManualClock(NOW)) as gw:
        await seed(gw)
        yield gw


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(gateway, TOKEN) as c:
        yield c


async def token_for(client: httpx.AsyncClient, body: dict[str, str]) -> dict[str, str]:
    response = await client.post(
        "/api/accounts", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


ADMIN = {"Authorization": f"Bearer {TOKEN}"}


async def test_two_villages_of_a_township_and_their_rate(client: httpx.AsyncClient):
    response = await client.get("/api/reports/coverage?month=2026-11", headers=ADMIN)
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["month"], report["zone"], report["level"]) == (
        "2026-11",
        "Asia/Shanghai",
        "village",
    )
    rows = {a["village"]: a for a in report["areas"]}
    assert (rows[EAST]["elders"], rows[EAST]["visited"], rows[EAST]["percent"]) == (5, 4, 80.0)
    assert (rows[WEST]["elders"], rows[WEST]["visited"], rows[WEST]["percent"]) == (4, 2, 50.0)
    assert rows[WEST]["rate"] == 0.5
    assert (rows[NORTH]["elders"], rows[NORTH]["visited"]) == (1, 1)
    assert report["total"] == {
        "county": None,
        "township": None,
        "village": None,
        "elders": 10,
        "visited": 7,
        "rate": 0.7,
        "percent": 70.0,
    }
    unvisited = {u["household_id"]: u for u in report["not_visited"]}
    assert set(unvisited) == UNVISITED_IN_TOWNSHIP
    assert unvisited["B3"] == {
        "household_id": "B3",
        "elder_name": "老人B3",
        "county": "某县",
        "township": "某镇",
        "village": WEST,
        "visitors": ["李敏"],
    }
    assert "+86139" not in response.text


async def test_township_and_county_levels(client: httpx.AsyncClient):
    township = (
        await client.get("/api/reports/coverage?month=2026-11&level=township", headers=ADMIN)
    ).json()
    rows = {(a["county"], a["township"]): a for a in township["areas"]}
    assert set(rows) == {("某县", "某镇"), ("某县", "北镇")}
    town = rows[("某县", "某镇")]
    assert (town["village"], town["elders"], town["visited"], town["percent"]) == (
        None,
        9,
        6,
        66.7,
    )
    county = (
        await client.get("/api/reports/coverage?month=2026-11&level=county", headers=ADMIN)
    ).json()
    assert [(a["county"], a["elders"], a["visited"]) for a in county["areas"]] == [("某县", 10, 7)]


async def test_an_operator_sees_their_township_only(client: httpx.AsyncClient):
    north = await token_for(client, {"name": "北镇值班", "role": "operator", "township": "北镇"})
    report = (await client.get("/api/reports/coverage?month=2026-11", headers=north)).json()
    assert [a["village"] for a in report["areas"]] == [NORTH]
    assert (report["total"]["elders"], report["total"]["visited"]) == (1, 1)
    assert report["not_visited"] == []
    home = await token_for(client, {"name": "某镇值班", "role": "operator", "township": "某镇"})
    report = (
        await client.get("/api/reports/coverage?month=2026-11&level=township", headers=home)
    ).json()
    assert [(a["township"], a["elders"], a["visited"], a["percent"]) for a in report["areas"]] == [
        ("某镇", 9, 6, 66.7)
    ]


async def test_a_visitor_sees_their_own_elders_only(client: httpx.AsyncClient):
    li = await token_for(client, {"name": "李敏", "role": "visitor", "phone": LI[1]})
    report = (await client.get("/api/reports/coverage?month=2026-11", headers=li)).json()
    # A1, A2 visited; A5 and B3 (only an automatic visit) not.
    assert (report["total"]["elders"], report["total"]["visited"]) == (4, 2)
    assert {u["household_id"] for u in report["not_visited"]} == {"A5", "B3"}


@pytest.mark.parametrize("month", ["2026-13", "2026-1", "november", "2027-01", "2026-12x"])
async def test_a_malformed_or_future_month_is_422_naming_month(
    client: httpx.AsyncClient, month: str
):
    response = await client.get("/api/reports/coverage", params={"month": month}, headers=ADMIN)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "month"]


async def test_the_current_month_by_default(client: httpx.AsyncClient):
    report = (await client.get("/api/reports/coverage", headers=ADMIN)).json()
    # December: B4's visit at 00:30 on the 1st is the only one so far.
    assert report["month"] == "2026-12"
    assert report["total"]["visited"] == 1


async def test_downloads_as_csv_and_xlsx(client: httpx.AsyncClient):
    response = await client.get(
        "/api/reports/coverage?month=2026-11&level=township&format=xlsx", headers=ADMIN
    )
    assert response.status_code == 200
    assert response.headers["content-disposition"] == (
        'attachment; filename="coverage-2026-11-township.xlsx"'
    )
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    table = [list(r) for r in book.worksheets[0].iter_rows(values_only=True)]
    assert table[0] == ["县（市、区）", "乡镇（街道）", "老人数", "本月已探访", "探访率（%）"]
    assert ["某县", "某镇", 9, 6, 66.7] in table
    assert table[-1] == ["合计", None, 10, 7, 70]
    unvisited = [list(r) for r in book.worksheets[1].iter_rows(values_only=True)][1:]
    assert sorted(r[0] for r in unvisited) == sorted(UNVISITED_IN_TOWNSHIP)
    response = await client.get("/api/reports/coverage?month=2026-11&format=csv", headers=ADMIN)
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert ["某县", "某镇", WEST, "4", "2", "50.0"] in rows


def test_the_cli_prints_and_writes_the_same_numbers(
    database_url: str,
    unique_id: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    async def prepare() -> None:
        async with offline_gateway(database_url, unique_id, clock=ManualClock(NOW)) as gw:
            await seed(gw)

    asyncio.run(prepare())
    monkeypatch.setenv("GATEWAY_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("GATEWAY_DATABASE_URL", database_url)
    monkeypatch.setenv("COLUMNS", "160")
    out_csv, out_xlsx = tmp_path / "coverage.csv", tmp_path / "coverage.xlsx"
    argv = ["report", "coverage", "--month", "2026-11", "--level", "township"]
    assert main([*argv, "--out", str(out_csv)]) == 0
    printed = capsys.readouterr().out
    for shown in ("某镇", "66.7", "合计", "70.0", "未探访老人（3位）", "老人B3"):
        assert shown in printed
    rows = list(csv.reader(io.StringIO(out_csv.read_bytes().decode("utf-8-sig"))))
    assert rows[1:] == [
        ["某县", "北镇", "1", "1", "100.0"],
        ["某县", "某镇", "9", "6", "66.7"],
        ["合计", "", "10", "7", "70.0"],
    ]
    assert main([*argv, "--out", str(out_xlsx)]) == 0
    book = openpyxl.load_workbook(out_xlsx)
    table = [list(r) for r in book.worksheets[0].iter_rows(values_only=True)]
    assert table[1:] == [
        ["某县", "北镇", 1, 1, 100],
        ["某县", "某镇", 9, 6, 66.7],
        ["合计", None, 10, 7, 70],
    ]
    assert main(["report", "coverage", "--month", "2099-01"]) == 1
    assert "--month" in capsys.readouterr().err
