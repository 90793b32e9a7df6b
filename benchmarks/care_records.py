"""The care records at a county's scale: ledger import, a month of visits, coverage and exports.

Issue 11: a county's ledger (--elders, default 10,000; ~10 townships × ~20 villages, realistic
names, valid citizen IDs and mainland mobiles, some categories, 1–2 visitors each from a pool of
~elders/20 per county) written as XLSX and CSV with the gateway's own writers, then:

1. imported through `gateway.care.ledger_store.import_ledger` (the function
   `POST /api/ledger/import` and `iot-gateway import ledger` call), dry run then for real, each
   format on a fresh database per round (--rounds, default 3);
2. a month of visit records (~1.5 per elder, ~8 % of elders not visited) filed with
   `gateway.store.visits.add_visit`, --batch visits per transaction;
3. `GET /api/reports/coverage` through the real API in process (httpx.ASGITransport, no socket,
   no broker) as admin, as an operator of one township and as a visitor (accounts made with
   `POST /api/accounts`): village level, county level, and the XLSX download, --requests each;
   `iot-gateway report coverage`'s query (`coverage_report`) once;
4. `GET /api/visits/export?month=…&format=xlsx` for one township as its operator;
5. peak RSS of this process.

Steps 2–4 run once, on the last round's XLSX database. SQLite in a temporary folder by default;
--database-url names a PostgreSQL server on which fresh databases are created and dropped:

    python benchmarks/care_records.py
    python benchmarks/care_records.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import resource
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from stdnum.cn import ric

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from databases import create_database, drop_database  # noqa: E402  (benchmarks/, this folder)

from gateway.app import Gateway  # noqa: E402
from gateway.care.audit import Actor  # noqa: E402
from gateway.care.ledger import ledger_rows, to_csv, to_xlsx  # noqa: E402
from gateway.care.ledger_store import import_ledger  # noqa: E402
from gateway.clock import ManualClock  # noqa: E402
from gateway.reports.response import Month  # noqa: E402
from gateway.store.coverage import coverage_report  # noqa: E402
from gateway.store.visits import VisitMethod, add_visit  # noqa: E402
from tests.integration.harness import api_client, offline_gateway  # noqa: E402

TOKEN = secrets.token_urlsafe(24)
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
ZONE = ZoneInfo("Asia/Shanghai")
MONTH = "2026-11"
NOW = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
"""The gateway's clock (a manual one): November 2026 is the last whole month."""
TARGET_IMPORT_S = 60.0
TARGET_COVERAGE_S = 2.0
RESULTS = ROOT / "benchmarks" / "results"


def chunks(text: str, width: int) -> list[str]:
    """Names of `width` characters written one after another."""
    return [text[k : k + width] for k in range(0, len(text), width)]


SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡"
    "余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯"
    "龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
FEMALE = chunks(
    "秀英桂英玉兰秀兰桂兰凤英淑珍秀珍玉珍金凤翠花兰英素珍玉梅春兰冬梅桂芳淑英秀芳美兰", 2
)
MALE = chunks("建国国华德明志强福生长林文华永福金生树林有才德胜国庆明山广仁振华和平玉林庆云春生", 2)
YOUNG = chunks("伟芳娜敏静丽强磊军洋勇艳杰涛明超霞平刚辉", 1)
TOWNSHIP_NAMES = chunks(
    "城关镇石门镇桃花镇新塘镇龙泉乡白水乡青山镇河口镇杨柳乡金竹乡马头镇高桥镇", 3
)
VILLAGE_HEADS = chunks("东西南北上下大小新老前后中高石水山林桥湾坪岭塘冲", 1)
VILLAGE_TAILS = ["村", "坪村", "湾村", "冲村", "岭村", "塘村", "桥村", "口村"]
MOBILE_PREFIXES = "133 135 136 137 138 139 150 151 152 157 158 159 177 180 182 185 187 188 189 199"
REGION = "522422"
"""A county's code for the citizen IDs (Guizhou, 大方县; one stdnum knows)."""
COUNTY = "大方县"
RELATIONS = ["儿子", "女儿", "侄子", "儿媳", "女婿", "孙子"]


def mobile(rng: random.Random) -> str:
    return rng.choice(MOBILE_PREFIXES.split()) + f"{rng.randrange(10**8):08d}"


def citizen_id(rng: random.Random, sex: str, taken: set[str]) -> str:
    while True:
        born = date(1928, 1, 1) + timedelta(days=rng.randrange(365 * 34))
        order = rng.randrange(500) * 2 + (1 if sex == "男" else 0)  # odd: male
        body = f"{REGION}{born:%Y%m%d}{order:03d}"
        number = body + ric.calc_check_digit(body + "0")  # wants a placeholder check digit
        if number not in taken:
            taken.add(number)
            return number


def county(elders: int, townships: int, villages: int, seed: int) -> list[list[str]]:
    """The ledger's header and rows (the gateway's own column table and writer)."""
    rng = random.Random(seed)
    towns = TOWNSHIP_NAMES[:townships]
    places: dict[str, list[str]] = {}
    for town in towns:
        names: set[str] = set()
        while len(names) < villages:
            names.add(
                rng.choice(VILLAGE_HEADS) + rng.choice(VILLAGE_HEADS) + rng.choice(VILLAGE_TAILS)
            )
        places[town] = sorted(names)
    # ~elders/20 visitors for the county, each working in one township.
    pool_size = max(townships, elders // 20)
    phones: set[str] = set()
    visitors: dict[str, list[tuple[str, str]]] = {t: [] for t in towns}
    for k in range(pool_size):
        while (phone := mobile(rng)) in phones:
            pass
        phones.add(phone)
        name = rng.choice(SURNAMES) + rng.choice(YOUNG) + rng.choice(["", *YOUNG])
        visitors[towns[k % townships]].append((name, phone))
    ids: set[str] = set()
    registries = []
    for n in range(elders):
        town = towns[n % townships]
        village = rng.choice(places[town])
        sex = rng.choice(["男", "女"])
        surname = rng.choice(SURNAMES)
        name = surname + rng.choice(MALE if sex == "男" else FEMALE)
        disabled = rng.random() < 0.12
        cid = citizen_id(rng, sex, ids)
        children = rng.sample(RELATIONS, rng.choice([0, 1, 1, 2]))
        relatives = [(surname + rng.choice(YOUNG), mobile(rng), r) for r in children]
        seen = rng.sample(visitors[town], rng.choice([1, 1, 2]))
        registries.append(
            {
                "id": f"H{n + 1:05d}",
                "elder": {"name": name, "sex": "male" if sex == "男" else "female"}
                | ({"citizen_id": cid})
                | ({"phone": mobile(rng)} if rng.random() < 0.6 else {}),
                "address": {
                    "county": COUNTY,
                    "township": town,
                    "village": village,
                    "detail": f"{rng.randint(1, 12)}组{rng.randint(1, 60)}号",
                },
                "categories": {
                    "living_alone": rng.random() < 0.45,
                    "left_behind": rng.random() < 0.3,
                    "disabled": disabled,
                    "disability_certificate": cid + f"{rng.randint(11, 44)}" if disabled else None,
                    "unable_to_self_care": rng.random() < 0.1,
                    "family_planning_special": rng.random() < 0.03,
                    "at_registered_residence": rng.random() < 0.9,
                },
                "living": {
                    "safe_water": rng.random() < 0.95,
                    "safe_electricity": rng.random() < 0.93,
                    "safe_housing": rng.random() < 0.9,
                    "monthly_income": rng.choice([0, 300, 500, 800, 1200]),
                    "monthly_benefits": rng.choice([150, 300, 600, 900.5]),
                },
                "support": {
                    "unit_type": "village_committee",
                    "unit": f"{village}村委会",
                    "responsible": rng.choice(SURNAMES) + "主任",
                    "measures": "每月上门探访",
                },
                "relatives": [
                    {"name": rn, "phone": rp, "relation": rr} for rn, rp, rr in relatives
                ],
                "visitors": [{"name": vn, "phone": vp} for vn, vp in seen],
                "risk": "high" if rng.random() < 0.1 else "normal",
                "registered_on": (
                    date(2024, 1, 1) + timedelta(days=rng.randrange(600))
                ).isoformat(),
            }
        )
    # The gateway's writer, as the ledger export uses it.
    return ledger_rows(registries)


@asynccontextmanager
async def fresh_database(url: str | None, folder: Path) -> AsyncIterator[str]:
    """SQLite in a new file of `folder`, or a new database on the server `url` names, dropped
    afterwards."""
    if url is None:
        yield f"sqlite+aiosqlite:///{folder / f'bench-{secrets.token_hex(4)}.db'}"
        return
    database = await create_database(url)
    try:
        yield database
    finally:
        await drop_database(database)


async def timed(call: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    began = time.perf_counter()
    result = await call()
    return time.perf_counter() - began, result


async def import_round(gateway: Gateway, data: bytes, kind: str, elders: int) -> dict[str, float]:
    async def run(dry_run: bool) -> Any:
        return await import_ledger(
            gateway.db,
            data,
            kind,  # type: ignore[arg-type]
            actor=gateway_actor(),
            township=None,
            now=NOW,
            today=NOW.astimezone(ZONE).date(),
            dry_run=dry_run,
        )

    dry_s, dry = await timed(lambda: run(True))
    assert not dry.errors, dry.errors[:5]
    assert dry.created == elders, (dry.created, dry.replaced)
    real_s, done = await timed(lambda: run(False))
    assert not done.errors, done.errors[:5]
    assert done.created == elders, (done.created, done.replaced)
    return {"dry_run_s": round(dry_s, 3), "import_s": round(real_s, 3)}


def gateway_actor() -> Actor:
    return Actor("benchmark", "admin")


async def file_visits(
    gateway: Gateway, ids: list[str], visitor_of: dict[str, str], batch: int, seed: int
) -> dict[str, Any]:
    """~1.5 visits per elder in the month, ~8 % of elders not visited; `batch` per transaction."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 1, tzinfo=ZONE)
    planned: list[tuple[str, datetime, VisitMethod]] = []
    for hid in ids:
        if rng.random() < 0.08:
            continue
        for _ in range(rng.choices([1, 2, 3], weights=[50, 37, 13])[0]):
            at = start + timedelta(minutes=rng.randrange(30 * 24 * 60))
            method = rng.choices(
                [VisitMethod.HOME_VISIT, VisitMethod.PHONE, VisitMethod.VIDEO],
                weights=[60, 35, 5],
            )[0]
            planned.append((hid, at, method))
    rng.shuffle(planned)
    form = {"mood": "no_change", "gas": "safe", "electricity": "safe", "health": "fair"}
    began = time.perf_counter()
    for k in range(0, len(planned), batch):
        async with gateway.db.begin() as conn:
            for hid, at, method in planned[k : k + batch]:
                await add_visit(
                    conn,
                    household_id=hid,
                    method=method,
                    visited_at=at,
                    visitor=visitor_of[hid],
                    summary="上门探访，老人精神尚可",
                    details={"form": form},
                    now=NOW,
                    by=visitor_of[hid],
                )
    seconds = time.perf_counter() - began
    return {
        "visits": len(planned),
        "elders_visited": len({p[0] for p in planned}),
        "batch": batch,
        "seconds": round(seconds, 3),
        "visits_per_s": round(len(planned) / seconds, 1),
    }


async def latencies(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], requests: int
) -> dict[str, Any]:
    times = []
    size = 0
    for _ in range(requests):
        began = time.perf_counter()
        response = await client.get(url, headers=headers)
        times.append(time.perf_counter() - began)
        assert response.status_code == 200, (url, response.status_code, response.text[:300])
        size = len(response.content)
    seen = {}
    if response.headers.get("content-type", "").startswith("application/json"):
        seen = {"elders_in_scope": response.json()["total"]["elders"]}
    return seen | {
        "requests": requests,
        "median_ms": round(statistics.median(times) * 1000, 1),
        "max_ms": round(max(times) * 1000, 1),
        "min_ms": round(min(times) * 1000, 1),
        "bytes": size,
    }


async def account(client: httpx.AsyncClient, body: dict[str, str]) -> dict[str, str]:
    response = await client.post("/api/accounts", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def queries(
    gateway: Gateway, township: str, visitor_phone: str, requests: int
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with api_client(gateway, TOKEN) as client:
        operator = await account(
            client, {"name": "镇操作员", "role": "operator", "township": township}
        )
        visitor = await account(
            client, {"name": "探访员", "role": "visitor", "phone": visitor_phone}
        )
        coverage = f"/api/reports/coverage?month={MONTH}"
        cases = {
            "coverage_village_admin": (f"{coverage}&level=village", ADMIN),
            "coverage_village_operator": (f"{coverage}&level=village", operator),
            "coverage_village_visitor": (f"{coverage}&level=village", visitor),
            "coverage_county_admin": (f"{coverage}&level=county", ADMIN),
            "coverage_xlsx_village_admin": (f"{coverage}&level=village&format=xlsx", ADMIN),
            "coverage_xlsx_village_operator": (f"{coverage}&level=village&format=xlsx", operator),
            "visits_export_xlsx_operator": (
                f"/api/visits/export?month={MONTH}&format=xlsx",
                operator,
            ),
        }
        for name, (url, headers) in cases.items():
            print(f"  {name} …", file=sys.stderr, flush=True)
            out[name] = await latencies(client, url, headers, requests)
        check = (await client.get(f"{coverage}&level=county", headers=ADMIN)).json()
        out["coverage_total"] = check["total"]
        out["not_visited_listed"] = len(check["not_visited"])
    # `iot-gateway report coverage` reads with this function and a connection of its own.
    times = []
    for _ in range(3):
        began = time.perf_counter()
        async with gateway.db.connect() as conn:
            await coverage_report(conn, Month.parse(MONTH), ZONE, "village")
        times.append(time.perf_counter() - began)
    out["cli_coverage_report_village"] = {
        "runs": 3,
        "median_ms": round(statistics.median(times) * 1000, 1),
    }
    return out


async def main(args: argparse.Namespace) -> dict[str, Any]:
    load = os.getloadavg()
    started = datetime.now(UTC)
    began = time.perf_counter()
    rows = county(args.elders, args.townships, args.villages, args.seed)
    files = {"xlsx": to_xlsx(rows), "csv": to_csv(rows)}
    generated_s = time.perf_counter() - began
    header, body = rows[0], rows[1:]
    col = {h: k for k, h in enumerate(header)}
    visitor_of = {r[col["编号"]]: r[col["探访人"]].split(";")[0] for r in body}
    township = body[0][col["乡镇(街道)"]]
    visitor_phone = body[0][col["探访人电话"]].split(";")[0]
    kind_of_db = "sqlite" if args.database_url is None else "postgresql"
    print(
        f"{args.elders} elders; XLSX {len(files['xlsx']):,} B, CSV {len(files['csv']):,} B "
        f"(made in {generated_s:.1f} s); {kind_of_db}; load average {load[0]:.2f}",
        file=sys.stderr,
    )
    rounds: list[dict[str, Any]] = []
    later: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for r in range(args.rounds):
            this: dict[str, Any] = {}
            for kind in ("xlsx", "csv"):
                last = r == args.rounds - 1 and kind == "xlsx"
                async with (
                    fresh_database(args.database_url, folder) as url,
                    offline_gateway(url, f"b{r}{kind}", clock=ManualClock(NOW)) as gw,
                ):
                    this[kind] = await import_round(gw, files[kind], kind, args.elders)
                    print(f"round {r + 1} {kind}: {this[kind]}", file=sys.stderr, flush=True)
                    if last:
                        later["visits"] = await file_visits(
                            gw, list(visitor_of), visitor_of, args.batch, args.seed
                        )
                        print(f"visits: {later['visits']}", file=sys.stderr, flush=True)
                        later["queries"] = await queries(gw, township, visitor_phone, args.requests)
            rounds.append(this)
    medians = {
        kind: {
            key: round(statistics.median(r[kind][key] for r in rounds), 3)
            for key in ("dry_run_s", "import_s")
        }
        for kind in ("xlsx", "csv")
    }
    for kind in medians:
        medians[kind]["rows_per_s"] = round(args.elders / medians[kind]["import_s"], 1)
        medians[kind]["dry_run_rows_per_s"] = round(args.elders / medians[kind]["dry_run_s"], 1)
    q = later["queries"]
    coverage_worst_ms = max(
        v["median_ms"]
        for k, v in q.items()
        if k.startswith("coverage_") and isinstance(v, dict) and "median_ms" in v
    )
    slowest_import = max(medians[k]["import_s"] for k in medians)
    return {
        "benchmark": "care_records",
        "started": started.isoformat(timespec="seconds"),
        "database": kind_of_db,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_at_start": [round(x, 2) for x in load],
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "parameters": {
            "elders": args.elders,
            "townships": args.townships,
            "villages_per_township": args.villages,
            "visitor_pool": max(args.townships, args.elders // 20),
            "rounds": args.rounds,
            "requests": args.requests,
            "visit_batch": args.batch,
            "seed": args.seed,
            "month": MONTH,
        },
        "files": {
            "xlsx_bytes": len(files["xlsx"]),
            "csv_bytes": len(files["csv"]),
            "generated_s": round(generated_s, 2),
        },
        "import_rounds": rounds,
        "import_medians": medians,
        "visits": later["visits"],
        "queries": q,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "target": {
            "import_under_s": TARGET_IMPORT_S,
            "coverage_under_s": TARGET_COVERAGE_S,
            "import_met": slowest_import < TARGET_IMPORT_S,
            "coverage_met": coverage_worst_ms / 1000 < TARGET_COVERAGE_S,
        },
    }


def table(result: dict[str, Any]) -> str:
    lines = [f"{'what':44} {'median':>12}  note"]
    for kind, m in result["import_medians"].items():
        lines.append(
            f"{'import ' + kind:44} {m['import_s']:>10.2f} s  {m['rows_per_s']:,.0f} rows/s"
        )
        lines.append(
            f"{'dry run ' + kind:44} {m['dry_run_s']:>10.2f} s  "
            f"{m['dry_run_rows_per_s']:,.0f} rows/s"
        )
    v = result["visits"]
    lines.append(
        f"{'visits filed (' + str(v['visits']) + ')':44} {v['seconds']:>10.2f} s  "
        f"{v['visits_per_s']:,.0f} visits/s"
    )
    for name, q in result["queries"].items():
        if isinstance(q, dict) and "median_ms" in q:
            extra = f"max {q['max_ms']} ms, {q['bytes']:,} B" if "bytes" in q else ""
            lines.append(f"{name:44} {q['median_ms']:>9.1f} ms  {extra}")
    lines.append(f"{'peak RSS':44} {result['peak_rss_mb']:>9.1f} MB")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elders", type=int, default=10_000)
    parser.add_argument("--townships", type=int, default=10)
    parser.add_argument("--villages", type=int, default=20, help="per township")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--batch", type=int, default=500, help="visits per transaction")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--database-url", help="a PostgreSQL server: fresh databases on it")
    parser.add_argument(
        "--out", type=Path, help="default: benchmarks/results/care-records-<db>.json"
    )
    args = parser.parse_args()
    result = asyncio.run(main(args))
    out = args.out or RESULTS / f"care-records-{result['database']}.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(table(result))
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
