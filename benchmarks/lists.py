"""GET /api/households at a county's numbers: latency and body size, before and after paging.

Issue 12: `GET /api/households` answered every household of the caller's scope in one body
(35 MB and 8 s at 100,000). With paging it answers 100 by default. This benchmark registers
--households (default 100,000) in 10 townships, each with a visitor and a relative, rows written
in bulk the way `create_household` writes them (`registry_columns`, `contact_rows`), then asks
the real API in process (httpx.ASGITransport, no socket, no broker) --requests times each:

- the first page as admin (no parameters: before paging, the whole list);
- `limit=1000` and the last page (`offset` = households − 100) as admin;
- the first page as the operator of one township (a tenth of the households);
- `q=` an elder's name, as admin.

Median and 95th percentile latency, body bytes and `X-Total-Count` for each. --compare-tree runs
the same against another checkout (e.g. a worktree of the commit before paging) in a
subprocess, its `gateway` imported from there:

    python benchmarks/lists.py
    python benchmarks/lists.py --compare-tree /tmp/before-paging
    python benchmarks/lists.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
TREE = Path(os.environ.get("GATEWAY_TREE", str(ROOT)))
"""The checkout whose `gateway` is measured: this one unless --compare-tree runs another."""
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(TREE))
from databases import create_database, drop_database  # noqa: E402  (benchmarks/, this folder)

from gateway.care.households import HouseholdIn, contact_rows, registry_columns  # noqa: E402
from gateway.store.tables import contacts, households  # noqa: E402
from tests.integration.harness import api_client, offline_gateway  # noqa: E402

TOKEN = secrets.token_urlsafe(24)
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
TOWNSHIPS = 10
BATCH = 5_000
SURNAMES = "王李张刘陈杨黄赵周吴徐孙马朱胡郭何林罗高"
GIVEN = "桂兰秀英玉珍德顺福生淑珍凤英建国秀兰玉兰桂英春花金山长林永福素芳翠花明德有才宝珍"
ASKS = (
    "first_page_admin",
    "limit_1000_admin",
    "last_page_admin",
    "first_page_operator",
    "name_query_admin",
)

TEMPLATE = HouseholdIn.model_validate(
    {
        "id": "H000000",
        "elder": {"name": "张桂兰", "phone": "+8613800000000"},
        "address": {"county": "青山县", "township": "镇0", "village": "村0", "detail": "3组12号"},
        "visitors": [{"name": "李敏", "phone": "+8613900000000"}],
        "relatives": [{"name": "王强", "phone": "+8613700000000", "relation": "son"}],
    }
)


def household_rows(n: int, r: random.Random) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The `households` row and `contacts` rows of the n-th household (from 1)."""
    household_id = f"H{n:06d}"
    name = r.choice(SURNAMES) + GIVEN[2 * r.randrange(len(GIVEN) // 2) :][:2]
    row = {
        **registry_columns(TEMPLATE, NOW),
        "id": household_id,
        "details": {},
        "created_at": NOW,
        "elder_name": name,
        "elder_phone": f"+86138{n:08d}",
        "township": f"镇{n % TOWNSHIPS}",
        "village": f"村{n % 200}",
        "address_detail": f"{r.randint(1, 8)}组{r.randint(1, 40)}号",
    }
    people = [
        {**c, "household_id": household_id, "phone": f"+86{139 - i * 2}{n:08d}"}
        for i, c in enumerate(contact_rows(household_id, TEMPLATE))
    ]
    return row, people


async def register_county(db: Any, count: int) -> None:
    r = random.Random(12)
    for start in range(1, count + 1, BATCH):
        rows, people = [], []
        for n in range(start, min(start + BATCH, count + 1)):
            row, contact = household_rows(n, r)
            rows.append(row)
            people += contact
        async with db.begin() as conn:
            await conn.execute(sa.insert(households), rows)
            await conn.execute(sa.insert(contacts), people)


async def measure(
    client: httpx.AsyncClient, params: dict[str, str | int], headers: dict[str, str], times: int
) -> dict[str, Any]:
    seconds, sizes, totals = [], set(), set()
    for _ in range(times):
        began = time.perf_counter()
        response = await client.get("/api/households", params=params, headers=headers)
        seconds.append(time.perf_counter() - began)
        assert response.status_code == 200, response.text
        sizes.add(len(response.content))
        totals.add(response.headers.get("x-total-count"))
        rows = len(response.json())
    seconds.sort()
    return {
        "params": params,
        "rows": rows,
        "body_bytes": max(sizes),
        "x_total_count": totals.pop(),
        "median_ms": round(statistics.median(seconds) * 1000, 1),
        "p95_ms": round(seconds[max(0, round(0.95 * len(seconds)) - 1)] * 1000, 1),
    }


async def run(
    database_url: str | None, count: int, requests: int, wanted: list[str]
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        url = (
            await create_database(database_url)
            if database_url
            else f"sqlite+aiosqlite:///{Path(folder) / 'lists.db'}"
        )
        try:
            async with offline_gateway(url, "bench-lists") as gateway:
                began = time.perf_counter()
                await register_county(gateway.db, count)
                registered_s = time.perf_counter() - began
                async with api_client(gateway, TOKEN) as client:
                    made = await client.post(
                        "/api/accounts",
                        json={"name": "周", "role": "operator", "township": "镇1"},
                        headers=ADMIN,
                    )
                    operator = {"Authorization": f"Bearer {made.json()['token']}"}
                    a_name = household_rows(7, random.Random(0))[0]["elder_name"]
                    asks: dict[str, tuple[dict[str, str | int], dict[str, str]]] = {
                        "first_page_admin": ({}, ADMIN),
                        "limit_1000_admin": ({"limit": 1000}, ADMIN),
                        "last_page_admin": ({"offset": count - 100}, ADMIN),
                        "first_page_operator": ({}, operator),
                        "name_query_admin": ({"q": a_name[1:]}, ADMIN),
                    }
                    results = {
                        label: await measure(client, params, headers, requests)
                        for label, (params, headers) in asks.items()
                        if label in wanted
                    }
        finally:
            if database_url:
                await drop_database(url)
    return {"tree": str(TREE), "registered_s": round(registered_s, 1), **results}


def other_tree(tree: Path, argv: list[str]) -> dict[str, Any]:
    """This benchmark run again with `gateway` imported from `tree`."""
    env = {**os.environ, "GATEWAY_TREE": str(tree), "PYTHONPATH": str(tree)}
    command = [sys.executable, __file__, "--json", *argv]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)  # noqa: S603
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--database-url", help="a PostgreSQL server (default: SQLite)")
    parser.add_argument("--compare-tree", type=Path, help="another checkout to measure too")
    parser.add_argument("--asks", default=",".join(ASKS), help="which requests to time")
    parser.add_argument(
        "--before-requests", type=int, default=3, help="--requests for --compare-tree"
    )
    parser.add_argument("--json", action="store_true", help="print only the result as JSON")
    parser.add_argument("--out", type=Path, help="write the result here as JSON")
    args = parser.parse_args()
    result = asyncio.run(
        run(args.database_url, args.households, args.requests, args.asks.split(","))
    )
    if args.json:
        print(json.dumps(result))
        return
    summary: dict[str, Any] = {
        "benchmark": "lists",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "database": "postgresql" if args.database_url else "sqlite",
        "households": args.households,
        "requests": args.requests,
        "after": result,
    }
    if args.compare_tree is not None:
        # Before paging the route ignores limit and offset: every ask with them is the whole list.
        before = ["--households", str(args.households), "--requests", str(args.before_requests)]
        before += ["--asks", "first_page_admin,first_page_operator,name_query_admin"]
        if args.database_url:
            before += ["--database-url", args.database_url]
        summary["before"] = other_tree(args.compare_tree, before)
    text = json.dumps(summary, ensure_ascii=False, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
