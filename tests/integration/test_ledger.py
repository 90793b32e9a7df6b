"""The ledger: import from CSV and XLSX (all rows or none), export in the same columns."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
from stdnum.cn import ric

from gateway.app import Gateway
from gateway.care.households import get_households
from gateway.care.ledger import XLSX_MEDIA_TYPE
from gateway.care.registry import registry_view
from gateway.cli import main
from gateway.clock import ManualClock
from tests.integration.harness import api_client, offline_gateway

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NOW = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)
CSV = {"Content-Type": "text/csv"}
XLSX = {"Content-Type": XLSX_MEDIA_TYPE}


def citizen_id(first17: str) -> str:
    return first17 + ric.calc_check_digit(first17 + "0")


ID_1 = "11010519491231002X"
ID_2 = citizen_id("11010519450303004")
ID_3 = citizen_id("11010519400707002")
HEADER = [
    "编号", "姓名", "性别", "身份证号", "联系电话", "县(市、区)", "乡镇(街道)", "村(社区)",
    "详细地址", "是否独居/空巢", "是否残疾", "残疾证号", "紧急联系人", "紧急联系人电话",
    "与老人关系", "探访人", "探访人电话", "风险等级", "纳入日期", "家庭成员姓名",
    "家庭成员身份证号", "月收入(元)", "帮扶单位类型",
]  # fmt: skip
GOOD = [
    ["L001", "张桂兰", "女", ID_1, "13800001111", "某县", "某镇", "东村", "1组3号", "是", "否",
     "", "王强;王丽", "13700001111;010-12345678", "儿子;女儿", "李敏", "13900001111", "高",
     "2025-03-01", "王强", ID_2, "800", "乡镇/村委会"],
    ["L002", "刘福", "男", ID_3, "", "某县", "某镇", "西村", "", "否", "是", "残疾证12345",
     "刘军", "13600001111", "侄子", "", "", "一般", "2025/4/1", "", "", "", ""],
]  # fmt: skip


def csv_bytes(rows: list[list[str]], encoding: str = "utf-8") -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode(encoding)


def xlsx_bytes(rows: list[list[Any]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.fixture
async def gateway(database_url: str, unique_id: str) -> AsyncIterator[Gateway]:
    async with offline_gateway(database_url, unique_id, clock=ManualClock(NOW)) as gw:
        yield gw


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(gateway, TOKEN) as c:
        yield c


async def registry(gateway: Gateway) -> dict[str, dict[str, Any]]:
    async with gateway.db.connect() as conn:
        return {h.id: registry_view(h) for h in await get_households(conn)}


async def token_for(client: httpx.AsyncClient, **account: str) -> dict[str, str]:
    response = await client.post("/api/accounts", json=account, headers=AUTH)
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def test_a_good_csv_imports_and_its_export_imports_unchanged(
    client: httpx.AsyncClient, gateway: Gateway
):
    response = await client.post(
        "/api/ledger/import", content=csv_bytes([HEADER, *GOOD]), headers=AUTH | CSV
    )
    assert response.json() == {"imported": 2, "updated": 0, "dry_run": False}
    first = await registry(gateway)
    assert first["L001"]["elder"] == {
        "name": "张桂兰", "phone": "+8613800001111", "citizen_id": ID_1, "sex": "female"
    }  # fmt: skip
    assert [(r["name"], r["phone"], r["relation"]) for r in first["L001"]["relatives"]] == [
        ("王强", "+8613700001111", "儿子"),
        ("王丽", "+861012345678", "女儿"),
    ]
    assert first["L001"]["members"][0]["citizen_id"] == ID_2
    assert first["L001"]["living"]["monthly_income"] == 800
    assert first["L001"]["support"]["unit_type"] == "village_committee"
    assert first["L002"]["categories"]["disability_certificate"] == "残疾证12345"
    assert first["L002"]["registered_on"] == "2025-04-01"

    for fmt, media in (("csv", CSV), ("xlsx", XLSX)):
        export = await client.get("/api/ledger/export", params={"format": fmt}, headers=AUTH)
        assert export.status_code == 200
        assert export.headers["content-disposition"] == (
            f'attachment; filename="ledger-2026-12-01.{fmt}"'
        )
        again = await client.post(
            "/api/ledger/import", content=export.content, headers=AUTH | media
        )
        assert again.json() == {"imported": 0, "updated": 2, "dry_run": False}
        assert await registry(gateway) == first
    exports = await client.get("/api/audit", params={"action": "ledger.export"}, headers=AUTH)
    assert [e["details"]["rows"] for e in exports.json()] == [2, 2]


async def test_an_address_typed_as_a_formula_stays_text_in_the_xlsx_export(
    client: httpx.AsyncClient, gateway: Gateway
):
    formula = '=HYPERLINK("http://example.invalid","x")'
    row = [*GOOD[0][:8], formula, *GOOD[0][9:]]
    imported = await client.post(
        "/api/ledger/import", content=csv_bytes([HEADER, row]), headers=AUTH | CSV
    )
    assert imported.status_code == 200, imported.text

    export = await client.get("/api/ledger/export", params={"format": "xlsx"}, headers=AUTH)
    sheet = openpyxl.load_workbook(io.BytesIO(export.content)).worksheets[0]
    cells = [c for r in sheet.iter_rows() for c in r if c.value == formula]
    assert [c.data_type for c in cells] == ["s"]  # text, not a formula Excel would run
    again = await client.post("/api/ledger/import", content=export.content, headers=AUTH | XLSX)
    assert again.json()["updated"] == 1
    assert (await registry(gateway))["L001"]["address"]["detail"] == formula


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
async def test_a_file_with_bad_rows_imports_nothing_and_names_every_bad_row(
    client: httpx.AsyncClient, gateway: Gateway, kind: str
):
    bad_id = [*GOOD[0]]
    bad_id[0], bad_id[3] = "L003", ID_1[:-1] + "1"  # wrong check digit
    bad_phone_and_flag = [*GOOD[1]]
    bad_phone_and_flag[0], bad_phone_and_flag[3] = "L004", ""
    bad_phone_and_flag[13], bad_phone_and_flag[10] = "12345", "maybe"
    disabled_without_certificate = [*GOOD[1]]
    disabled_without_certificate[0], disabled_without_certificate[3] = "L005", ""
    disabled_without_certificate[11] = ""
    same_elder = ["L006", *GOOD[0][1:]]
    rows = [["某县特殊困难老年人台账"], HEADER, GOOD[0], bad_id, [], bad_phone_and_flag,
            disabled_without_certificate, same_elder, GOOD[1]]  # fmt: skip
    body, media = (csv_bytes(rows), CSV) if kind == "csv" else (xlsx_bytes(rows), XLSX)
    response = await client.post("/api/ledger/import", content=body, headers=AUTH | media)
    assert response.status_code == 422
    assert response.json() == {
        "detail": "4 rows have errors: nothing was imported",
        "errors": [
            {"row": 4, "column": "身份证号", "msg": "Value error, the check digit (the 18th "
             "character) is wrong"},
            {"row": 6, "column": "是否残疾", "msg": "write 是 or 否"},
            {"row": 6, "column": "紧急联系人电话", "msg": "Value error, not a valid phone number "
             "(a mainland mobile like 13912345678, a fixed line with its area code like "
             "010-12345678, or + country code and number)"},
            {"row": 7, "column": "残疾证号", "msg": "Value error, required when disabled is true"},
            {"row": 8, "column": "身份证号", "msg": "the same ID number is on row 3"},
        ],
    }  # fmt: skip
    assert ID_1[:-1] + "1" not in response.text
    assert await registry(gateway) == {}


async def test_gb18030_csv_and_a_dry_run(client: httpx.AsyncClient, gateway: Gateway):
    body = csv_bytes([HEADER, *GOOD], encoding="gb18030")
    dry = await client.post(
        "/api/ledger/import", params={"dry_run": "true"}, content=body, headers=AUTH | CSV
    )
    assert dry.json() == {"imported": 2, "updated": 0, "dry_run": True}
    assert await registry(gateway) == {}
    done = await client.post("/api/ledger/import", content=body, headers=AUTH | CSV)
    assert done.json()["imported"] == 2
    assert (await registry(gateway))["L001"]["elder"]["name"] == "张桂兰"


async def test_rows_without_an_id_are_matched_by_id_number_or_given_a_new_id(
    client: httpx.AsyncClient, gateway: Gateway
):
    await client.post(
        "/api/ledger/import", content=csv_bytes([HEADER, GOOD[0]]), headers=AUTH | CSV
    )
    unnumbered = [["", *GOOD[0][1:]], ["", *GOOD[1][1:]]]
    response = await client.post(
        "/api/ledger/import", content=csv_bytes([HEADER, *unnumbered]), headers=AUTH | CSV
    )
    assert response.json() == {"imported": 1, "updated": 1, "dry_run": False}
    ids = sorted(await registry(gateway))
    assert ids[0] != "L001"
    assert ids[1] == "L001"
    assert ID_3 not in ids[0]


async def test_an_operator_imports_and_exports_only_their_township(
    client: httpx.AsyncClient, gateway: Gateway
):
    operator = await token_for(client, name="周", role="operator", township="某镇")
    elsewhere = [*GOOD[1]]
    elsewhere[6] = "别镇"
    response = await client.post(
        "/api/ledger/import",
        content=csv_bytes([HEADER, GOOD[0], elsewhere]),
        headers=operator | CSV,
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"row": 3, "column": "乡镇(街道)", "msg": "not your township"}
    ]
    assert await registry(gateway) == {}
    await client.post(
        "/api/ledger/import", content=csv_bytes([HEADER, GOOD[0], elsewhere]), headers=AUTH | CSV
    )
    export = await client.get("/api/ledger/export", params={"format": "csv"}, headers=operator)
    rows = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert [r[0] for r in rows[1:]] == ["L001"]
    assert ID_1 in export.text  # whole for staff


async def test_a_visitor_exports_their_elders_masked_and_cannot_import(
    client: httpx.AsyncClient,
):
    await client.post("/api/ledger/import", content=csv_bytes([HEADER, *GOOD]), headers=AUTH | CSV)
    visitor = await token_for(client, name="李敏", role="visitor", phone="13900001111")
    export = await client.get("/api/ledger/export", params={"format": "xlsx"}, headers=visitor)
    assert export.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(export.content), read_only=True).worksheets[0]
    rows = [[c or "" for c in r] for r in sheet.iter_rows(values_only=True)]
    assert [r[0] for r in rows[1:]] == ["L001"]
    text = str(rows)
    assert ID_1 not in text
    assert ID_2 not in text
    assert "13800001111" not in text
    assert "110105***********X" in text
    assert "+86138****1111" in text
    refused = await client.post(
        "/api/ledger/import", content=csv_bytes([HEADER, *GOOD]), headers=visitor | CSV
    )
    assert refused.status_code == 403


async def test_a_ledger_larger_than_the_api_body_limit_is_accepted(client: httpx.AsyncClient):
    rows = [HEADER] + [
        [f"B{i:05d}", "某某", "", "", "", "某县", "某镇", f"{i}村", "x" * 100] for i in range(8000)
    ]
    body = csv_bytes(rows)
    assert len(body) > 1024 * 1024
    response = await client.post("/api/ledger/import", content=body, headers=AUTH | CSV)
    assert response.json() == {"imported": 8000, "updated": 0, "dry_run": False}


def test_the_cli_imports_a_file_or_reports_every_bad_row(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    for name in [n for n in os.environ if n.startswith("GATEWAY_") and "TEST" not in n]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("GATEWAY_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("GATEWAY_DATABASE_URL", database_url)
    bad = tmp_path / "bad.xlsx"
    wrong = [*GOOD[1]]
    wrong[3] = ID_1[:-1] + "1"
    bad.write_bytes(xlsx_bytes([HEADER, GOOD[0], wrong]))
    assert main(["import", "ledger", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "身份证号" in out
    assert "1 rows have errors: nothing was imported" in out
    good = tmp_path / "good.csv"
    good.write_bytes(b"\xef\xbb\xbf" + csv_bytes([HEADER, *GOOD]))
    assert main(["import", "ledger", str(good), "--dry-run"]) == 0
    assert "would import 2 new households" in capsys.readouterr().out
    assert main(["import", "ledger", str(good)]) == 0
    assert "imported 2 new households, updated 0" in capsys.readouterr().out
    assert main(["import", "ledger", str(good)]) == 0
    assert "imported 0 new households, updated 2" in capsys.readouterr().out
