"""Visit records exported in the form's layout: XLSX, CSV, a printable page on one A4 sheet."""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from gateway.app import Gateway
from gateway.clock import ManualClock
from gateway.privacy import mask_citizen_id
from gateway.store.tables import households
from tests.conftest import missing_service
from tests.integration.harness import HOUSEHOLD, api_client, offline_gateway, register
from tests.integration.test_visit_form_api import FULL_FORM

TOKEN = "test-token-0123456789"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
NOW = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
CITIZEN_ID = "11010519491231002X"
OTHER = {
    **HOUSEHOLD,
    "id": "H002",
    "elder": {"name": "赵秀英", "phone": "+8613800000001"},
    "address": {"county": "某县", "township": "某镇", "village": "东村", "detail": "1组"},
    "visitors": [{"name": "陈静", "phone": "+8613900000009"}],
}
WHOLE_NUMBERS = ("+8613800000000", "+8613700000000", CITIZEN_ID)


@pytest.fixture
async def gateway(database_url: str, unique_id: str) -> AsyncIterator[Gateway]:
    async with offline_gateway(database_url, unique_id, clock=ManualClock(NOW)) as gw:
        await register(gw)
        await register(gw, OTHER)
        async with gw.db.begin() as conn:
            await conn.execute(
                sa.update(households).where(households.c.id == "H001").values(citizen_id=CITIZEN_ID)
            )
        yield gw


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(gateway, TOKEN) as c:
        yield c


async def token_for(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, str]:
    response = await client.post("/api/accounts", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def visitor_token(client: httpx.AsyncClient) -> dict[str, str]:
    return await token_for(client, {"name": "李敏", "role": "visitor", "phone": "13900000000"})


async def file(
    client: httpx.AsyncClient, household: str, visited_at: str, **body: Any
) -> dict[str, Any]:
    payload = {"method": "home_visit", "visited_at": visited_at, "visitor": "李敏", **body}
    response = await client.post(f"/api/households/{household}/visits", json=payload, headers=ADMIN)
    assert response.status_code == 201, response.text
    return dict(response.json())


def sheet_rows(content: bytes) -> list[list[str]]:
    sheet = load_workbook(io.BytesIO(content)).active
    assert sheet is not None
    return [["" if c is None else str(c) for c in row] for row in sheet.iter_rows(values_only=True)]


def row_starting(rows: list[list[str]], first: str, *, after: int = 0) -> int:
    return next(i for i, row in enumerate(rows) if i >= after and row and row[0] == first)


async def test_a_households_workbook_is_laid_out_like_the_form(client: httpx.AsyncClient):
    await file(client, "H001", "2026-11-03T10:00:00+08:00", method="phone", summary="电话问候")
    await file(client, "H001", "2026-11-20T15:30:00+08:00", summary="上门探访", form=FULL_FORM)
    await client.post(
        "/api/households/H001/services",
        json={
            "served_on": "2026-11-21",
            "service": "助餐",
            "provider": "幸福食堂",
            "satisfaction": "very_satisfied",
        },
        headers=ADMIN,
    )
    response = await client.get("/api/households/H001/visits.xlsx", headers=ADMIN)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    rows = sheet_rows(response.content)

    assert rows[0][0] == "特殊困难老年人探访关爱记录表"
    block = {row[0]: row[1] for row in rows[1:14] if row[0]}
    assert block["老人姓名"] == "张桂兰"
    assert block["身份证号"] == CITIZEN_ID  # whole for an admin, and audited
    assert block["联系电话"] == "+8613800000000"
    assert (block["紧急联系人"], block["紧急联系人电话"]) == ("王强", "+8613700000000")
    assert block["村（社区）"] == "某村"

    header_at = row_starting(rows, "序号")
    header = rows[header_at]
    for name in ("探访时间", "探访方式", "家庭人口变化", "燃气安全", "热水器安全", "用电安全"):
        assert name in header
    first, second = (dict(zip(header, rows[header_at + i], strict=False)) for i in (1, 2))
    assert (first["序号"], first["探访方式"], first["探访时间"]) == (
        "1",
        "电话",
        "2026-11-03 10:00",
    )
    assert (second["序号"], second["探访方式"]) == ("2", "上门探访")
    assert second["家庭人口变化"] == "减少1人"
    assert second["行动"] == "变差"
    assert second["疾病情况"] == "严重：高血压"
    assert (second["热水器安全"], second["用电安全"]) == ("较安全", "不安全")
    assert second["健康状况"] == "一般（血压偏高）"
    assert second["子女探望"] == "偶尔"
    assert second["老人签字确认"] == "张桂兰（已确认）"
    assert second["录入人"] == "admin"

    services_at = row_starting(rows, "序号", after=header_at + 1)
    assert rows[services_at][:5] == ["序号", "服务日期", "服务内容", "服务提供者", "满意度"]
    assert rows[services_at + 1][:5] == ["1", "2026-11-21", "助餐", "幸福食堂", "非常满意"]

    english = await client.get("/api/households/H001/visits.xlsx?lang=en", headers=ADMIN)
    rows = sheet_rows(english.content)
    assert rows[0][0] == "Visit record of an elder in special difficulty"
    assert "Water heating" in rows[row_starting(rows, "No.")]

    audit = (await client.get("/api/audit?action=visits.export", headers=ADMIN)).json()
    assert [e["household_id"] for e in audit] == ["H001", "H001"]


async def test_a_visitor_gets_numbers_masked_in_every_export(client: httpx.AsyncClient):
    visit = await file(client, "H001", "2026-11-20T15:30:00+08:00", form=FULL_FORM)
    visitor = await visitor_token(client)

    workbook = await client.get("/api/households/H001/visits.xlsx", headers=visitor)
    page = await client.get(f"/api/households/H001/visits/{visit['id']}/print", headers=visitor)
    month = await client.get("/api/visits/export?month=2026-11&format=csv", headers=visitor)
    texts = {
        "xlsx": "\n".join("\t".join(row) for row in sheet_rows(workbook.content)),
        "print": page.text,
        "csv": month.content.decode("utf-8-sig"),
    }
    for name, text in texts.items():
        for number in WHOLE_NUMBERS:
            assert number not in text, name
            assert number.removeprefix("+86") not in text, name
        assert mask_citizen_id(CITIZEN_ID) in text, name
        assert "+86138****0000" in text, name
    # Nothing whole was handed out, so nothing to audit.
    audit = (await client.get("/api/audit?action=visits.export", headers=ADMIN)).json()
    assert audit == []


async def test_a_visitor_cannot_export_another_visitors_elder(client: httpx.AsyncClient):
    other = await file(client, "H002", "2026-11-20T15:30:00+08:00")
    mine = await file(client, "H001", "2026-11-21T15:30:00+08:00")
    visitor = await visitor_token(client)
    refused = [
        await client.get("/api/households/H002/visits.xlsx", headers=visitor),
        await client.get(f"/api/households/H002/visits/{other['id']}/print", headers=visitor),
        await client.get(f"/api/households/H001/visits/{other['id']}/print", headers=visitor),
    ]
    assert [r.status_code for r in refused] == [404, 404, 404]
    month = await client.get("/api/visits/export?month=2026-11&format=csv", headers=visitor)
    rows = list(csv.reader(io.StringIO(month.content.decode("utf-8-sig"))))
    assert [row[0] for row in rows[1:]] == ["H001"]
    assert mine["id"]


async def test_a_months_export_keeps_to_the_month_and_the_area(client: httpx.AsyncClient):
    # Asia/Shanghai: 16:30 UTC on 30 November is already 1 December there.
    await file(client, "H001", "2026-11-01T00:10:00+08:00", summary="月初")
    await file(client, "H002", "2026-11-15T09:00:00+08:00", summary="东村")
    await file(client, "H001", "2026-11-30T16:30:00Z", summary="下月")
    await file(client, "H001", "2026-10-31T23:50:00+08:00", summary="上月")

    response = await client.get("/api/visits/export?month=2026-11", headers=ADMIN)
    assert response.status_code == 200, response.text
    rows = sheet_rows(response.content)
    header = rows[0]
    assert header[:3] == ["户号", "老人姓名", "身份证号"]
    summaries = [dict(zip(header, row, strict=True))["探访情况"] for row in rows[1:]]
    assert summaries == ["月初", "东村"]
    assert rows[1][2] == CITIZEN_ID  # admin: whole, and audited
    audit = (await client.get("/api/audit?action=visits.export", headers=ADMIN)).json()
    assert audit[0]["target"] == "month 2026-11"

    village = await client.get(
        "/api/visits/export",
        params={"month": "2026-11", "village": "东村", "format": "csv"},
        headers=ADMIN,
    )
    lines = list(csv.reader(io.StringIO(village.content.decode("utf-8-sig"))))
    assert [row[0] for row in lines[1:]] == ["H002"]
    elsewhere = await token_for(client, {"name": "周", "role": "operator", "township": "别镇"})
    empty = await client.get("/api/visits/export?month=2026-11&format=csv", headers=elsewhere)
    assert len(list(csv.reader(io.StringIO(empty.content.decode("utf-8-sig"))))) == 1


@pytest.mark.parametrize("query", ["month=2026-13", "month=11-2026", "month=2026-11&format=pdf"])
async def test_a_bad_export_request_is_422(client: httpx.AsyncClient, query: str):
    response = await client.get(f"/api/visits/export?{query}", headers=ADMIN)
    assert response.status_code == 422


async def test_a_note_that_looks_like_a_formula_stays_text(client: httpx.AsyncClient):
    await file(
        client,
        "H001",
        "2026-11-20T15:30:00+08:00",
        form={"care_suggestions": '=HYPERLINK("http://example.invalid","x")'},
    )
    response = await client.get("/api/households/H001/visits.xlsx", headers=ADMIN)
    sheet = load_workbook(io.BytesIO(response.content)).active
    assert sheet is not None
    cells = [c for row in sheet.iter_rows() for c in row if c.value and "HYPERLINK" in str(c.value)]
    assert [c.data_type for c in cells] == ["s"]
    month = await client.get("/api/visits/export?month=2026-11&format=csv", headers=ADMIN)
    assert "'=HYPERLINK" in month.content.decode("utf-8-sig")


async def test_the_printed_page_shows_the_form_escaped_in_either_language(
    client: httpx.AsyncClient,
):
    visit = await file(
        client,
        "H001",
        "2026-11-20T15:30:00+08:00",
        summary="<script>alert(1)</script>",
        form=FULL_FORM,
    )
    page = await client.get(f"/api/households/H001/visits/{visit['id']}/print", headers=ADMIN)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "<script>" not in page.text
    assert "&lt;script&gt;" in page.text
    for text in ("探访关爱记录表", "燃气安全", "较安全", "严重：高血压", CITIZEN_ID, "@page"):
        assert text in page.text
    english = await client.get(
        f"/api/households/H001/visits/{visit['id']}/print?lang=en", headers=ADMIN
    )
    for text in ("Water heating", "fairly safe", "serious: 高血压", "Elder&#39;s confirmation"):
        assert text in english.text
    audit = (await client.get("/api/audit?action=visit.print", headers=ADMIN)).json()
    assert [e["target"] for e in audit] == [f"visit {visit['id']}"] * 2


def long_text(length: int) -> str:
    return ("屋顶漏雨需要维修，老人行动不便，" * 50)[:length]


@pytest.mark.parametrize("lang", ["zh", "en"])
async def test_a_visit_with_every_field_full_prints_on_one_a4_sheet(
    client: httpx.AsyncClient, tmp_path: Path, lang: str
):
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        missing_service("chromium is not installed (apt-get install chromium)")
    form = {
        **FULL_FORM,
        "illness_name": long_text(100),
        "elder_signature": long_text(50),
        **{
            key: long_text(100)
            for key in (
                "health_note",
                "living_security_note",
                "living_environment_note",
                "hygiene_note",
                "family_care_note",
            )
        },
        **{
            key: long_text(200)
            for key in ("service_needs", "care_suggestions", "special_circumstances")
        },
    }
    visit = await file(
        client, "H001", "2026-11-20T15:30:00+08:00", summary=long_text(400), form=form
    )
    page = await client.get(
        f"/api/households/H001/visits/{visit['id']}/print?lang={lang}", headers=ADMIN
    )
    html = tmp_path / "visit.html"
    html.write_text(page.text, encoding="utf-8")
    pdf = tmp_path / "visit.pdf"
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-pdf-header-footer",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--print-to-pdf={pdf}",
            html.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    pages = re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf.read_bytes())
    assert len(pages) == 1
