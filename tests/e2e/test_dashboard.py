"""What an operator and a visitor see and do in the control room, in a real browser."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.conftest import AUTH, Screen, account, household, register
from tests.integration.harness import Publisher
from tests.integration.test_service import TOKEN, Service

pytestmark = pytest.mark.mqtt

VISITOR_PHONE = "+8613911112222"
COLOURS_DRAWN = """(canvas) => {
    const d = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    const seen = new Set();
    for (let i = 0; i < d.length; i += 64) seen.add(`${d[i]},${d[i + 1]},${d[i + 2]},${d[i + 3]}`);
    return seen.size;
}"""


def smoke(publisher: Publisher, prefix: str, household_id: str) -> None:
    publisher.send(
        f"{prefix}/homes/{household_id}/smoke-1/telemetry",
        {"kind": "smoke_detector", "smoke": True, "battery_pct": 88},
    )


def test_sign_in_in_chinese_then_english(gateway: Service, screen: Screen):
    register(gateway.url, household("H001"))
    page = screen.page
    page.goto(f"{gateway.url}/")
    expect(page.locator("h1")).to_have_text("登录控制室")
    page.fill("#token", "not-a-token")
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("令牌无效")

    screen.sign_in(gateway.url, TOKEN)
    expect(page.locator("[data-testid=count-total] .n")).to_have_text("1")
    tile = page.locator("[data-household=H001]")
    expect(tile).to_have_attribute("data-status", "well")
    expect(tile).to_contain_text("张桂兰")
    expect(tile).to_contain_text("正常")
    screen.shot("overview-zh")

    page.click("[data-testid=language]")
    expect(tile).to_contain_text("Well")
    expect(page.locator("nav[aria-label=main]")).to_contain_text("Alert queue")
    page.reload()  # the choice is remembered, and so is the sign-in
    expect(page.locator("[data-household=H001]")).to_contain_text("Well")


def test_smoke_alarm_appears_live_then_acknowledged_with_its_trail(
    gateway: Service, screen: Screen, publisher: Publisher, unique_id: str
):
    register(gateway.url, household("H001"))
    page = screen.page
    screen.sign_in(gateway.url, TOKEN)
    tile = page.locator("[data-household=H001]")
    expect(tile).to_have_attribute("data-status", "well")
    page.evaluate("window.__notReloaded = true")

    smoke(publisher, unique_id, "H001")
    # Live, without a reload: the tile turns, a toast names the alarm, the chime plays.
    expect(tile).to_have_attribute("data-status", "alert", timeout=5_000)
    expect(page.locator("[data-testid=critical-toast]")).to_contain_text("烟雾/燃气报警")
    expect(page.locator("html")).to_have_attribute("data-chimes", "1")
    expect(page.locator("[data-testid=count-alert] .n")).to_have_text("1")
    assert page.evaluate("window.__notReloaded") is True
    screen.shot("smoke-live")

    page.click("nav >> text=告警队列")
    alert = page.locator("[data-rule=smoke_alarm]")
    expect(alert).to_contain_text("张桂兰 · 某村 · H001")
    alert.locator("[data-action=ack]").click()
    expect(alert).to_have_attribute("data-status", "acknowledged")
    expect(alert).to_contain_text("admin 已确认")
    alert.locator("[data-action=trail]").click()
    trail = alert.locator("[data-testid=trail]")
    expect(trail.locator("[data-event=acknowledged]")).to_contain_text("admin")
    screen.shot("acknowledged-trail")

    alert.locator("[data-action=resolve]").click()
    alert.locator("[data-testid=resolve-note]").fill("已电话联系，厨房烧水冒烟，老人平安")
    alert.locator("button[type=submit]").click()
    expect(page.locator("[data-testid=no-alerts]")).to_be_visible()
    found = httpx.get(f"{gateway.url}/api/alerts", headers=AUTH).json()
    assert found[0]["status"] == "resolved"
    assert found[0]["resolution_note"] == "已电话联系，厨房烧水冒烟，老人平安"


def test_household_page_draws_its_charts(
    gateway: Service, screen: Screen, publisher: Publisher, unique_id: str
):
    register(gateway.url, household("H001"))
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    water, energy = 1000.0, 50.0
    for n in range(24 * 4, 0, -1):  # a day, every 15 minutes
        at = (now - timedelta(minutes=15 * n)).timestamp()
        water += 5.0 if 6 <= (24 * 4 - n) // 4 % 24 <= 21 else 0.0
        energy += 0.1
        prefix = f"{unique_id}/homes/H001"
        publisher.send(
            f"{prefix}/water-1/telemetry",
            {"kind": "water_meter", "water_total_l": water, "ts": at},
        )
        publisher.send(
            f"{prefix}/power-1/telemetry",
            {"kind": "power_meter", "energy_total_kwh": energy, "power_w": 400.0, "ts": at},
        )
        if n % 16 == 0:
            publisher.send(
                f"{prefix}/hm-1/telemetry",
                {
                    "kind": "health_monitor",
                    "heart_rate_bpm": 70 + n % 7,
                    "spo2_pct": 97,
                    "ts": at,
                },
            )
    deadline = time.monotonic() + 15
    devices = f"{gateway.url}/api/households/H001/devices"
    while len(httpx.get(devices, headers=AUTH).json()) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.2)

    page = screen.page
    screen.sign_in(gateway.url, TOKEN)
    page.goto(f"{gateway.url}/#/household/H001")
    for chart in ("chart-water", "chart-energy", "chart-vitals"):
        canvas = page.locator(f"[data-testid={chart}] canvas")
        expect(canvas).to_be_visible()
        # Drawn: the canvas holds more than one colour.
        assert page.evaluate(COLOURS_DRAWN, canvas.element_handle()) > 2
    devices = page.locator("[data-testid=devices]")
    expect(devices.locator("[data-device=water-1] [data-metric=water_total_l]")).not_to_be_empty()
    screen.shot("household-24h")
    page.get_by_role("button", name="7天").click()
    expect(page.locator("[data-testid=chart-water] canvas")).to_be_visible()
    screen.shot("household-7d")


def test_a_visitor_sees_only_their_elders(
    gateway: Service, browser: Browser, screen: Screen, publisher: Publisher, unique_id: str
):
    register(gateway.url, household("H001", visitor=VISITOR_PHONE))
    register(gateway.url, household("H002", township="另一镇", village="别村"))
    token = account(gateway.url, name="李探访", role="visitor", phone=VISITOR_PHONE)
    page = screen.page
    screen.sign_in(gateway.url, token)
    expect(page.locator("[data-household=H001]")).to_be_visible()
    expect(page.locator("[data-testid=count-total] .n")).to_have_text("1")
    expect(page.locator("[data-household=H002]")).to_have_count(0)
    expect(page.locator("nav[aria-label=main]")).not_to_contain_text("探访覆盖")

    # Another elder's alarm never reaches this visitor's page; their own elder's does.
    smoke(publisher, unique_id, "H002")
    deadline = time.monotonic() + 10
    while not httpx.get(f"{gateway.url}/api/alerts", headers=AUTH).json():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    page.wait_for_timeout(1_000)
    expect(page.locator("[data-testid=critical-toast]")).to_have_count(0)
    smoke(publisher, unique_id, "H001")
    expect(page.locator("[data-testid=critical-toast]")).to_contain_text("H001")

    page.goto(f"{gateway.url}/#/household/H002")
    expect(page.locator(".error")).to_contain_text("无权查看")
    screen.shot("visitor-refused")


def test_the_page_survives_a_gateway_restart(
    gateway: Service, screen: Screen, publisher: Publisher, unique_id: str
):
    register(gateway.url, household("H001"))
    page = screen.page
    screen.sign_in(gateway.url, TOKEN)
    expect(page.locator("[data-household=H001]")).to_have_attribute("data-status", "well")

    gateway.stop()
    expect(page.locator("[data-testid=disconnected]")).to_contain_text("连接已断开")
    screen.shot("disconnected")
    gateway.start()
    expect(page.locator("[data-testid=live-state]")).to_have_attribute(
        "data-state", "open", timeout=20_000
    )
    expect(page.locator("[data-testid=disconnected]")).to_have_count(0)

    smoke(publisher, unique_id, "H001")
    expect(page.locator("[data-household=H001]")).to_have_attribute(
        "data-status", "alert", timeout=5_000
    )


@pytest.mark.postgres
def test_an_alert_committed_by_another_process_appears_live(
    tmp_path: Path,
    postgres_url: str,
    mqtt_url: str,
    unique_id: str,
    screen: Screen,
    publisher: Publisher,
):
    # Two gateways share one database; the browser watches the one that ingests nothing.
    ingesting = Service(tmp_path, mqtt_url, unique_id, {}, database_url=postgres_url, name="a")
    watching = Service(
        tmp_path, mqtt_url, f"{unique_id}-quiet", {}, database_url=postgres_url, name="b"
    )
    ingesting.start()
    watching.start()
    try:
        register(ingesting.url, household("H001"))
        page = screen.page
        screen.sign_in(watching.url, TOKEN)
        tile = page.locator("[data-household=H001]")
        expect(tile).to_have_attribute("data-status", "well")
        smoke(publisher, unique_id, "H001")
        expect(tile).to_have_attribute("data-status", "alert", timeout=5_000)
        expect(page.locator("[data-testid=critical-toast]")).to_be_visible()
    finally:
        watching.stop()
        ingesting.stop()


@pytest.mark.parametrize(
    ("label", "viewport"),
    [("wall", {"width": 1920, "height": 1080}), ("phone", {"width": 390, "height": 844})],
)
def test_readable_on_a_wall_screen_and_a_phone(
    gateway: Service, browser: Browser, label: str, viewport: dict[str, int]
):
    for n in range(1, 31):
        register(gateway.url, household(f"H{n:03d}", village=f"第{n % 3 + 1}村"))
    screen = Screen(browser, f"layout-{label}", viewport=viewport)
    try:
        page = screen.page
        screen.sign_in(gateway.url, TOKEN)
        for route in ("overview", "alerts", "household/H001", "warnings", "coverage", "report"):
            page.goto(f"{gateway.url}/#/{route}")
            page.wait_for_load_state("networkidle")
            expect(page.locator(".loading")).to_have_count(0)
            overflow = page.evaluate(
                "document.scrollingElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{route} is {overflow}px wider than a {label} screen"
            screen.shot(route.replace("/", "-"))
        assert not screen.errors, screen.errors
    finally:
        screen.close()


def test_a_reading_changes_the_device_tile_without_a_reload(
    gateway: Service, screen: Screen, publisher: Publisher, unique_id: str
):
    register(gateway.url, household("H001"))
    topic = f"{unique_id}/homes/H001/power-1/telemetry"
    publisher.send(topic, {"kind": "power_meter", "power_w": 120.0, "energy_total_kwh": 10.0})
    page = screen.page
    screen.sign_in(gateway.url, TOKEN)
    page.goto(f"{gateway.url}/#/household/H001")
    power = page.locator("[data-device=power-1] [data-metric=power_w]")
    expect(power).to_have_text("120")
    page.evaluate("window.__notReloaded = true")
    publisher.send(topic, {"kind": "power_meter", "power_w": 1850.5, "energy_total_kwh": 10.2})
    expect(power).to_have_text("1,850.5")
    assert page.evaluate("window.__notReloaded") is True


def test_an_operator_issues_a_warning_and_watches_elders_accounted_for(
    gateway: Service, screen: Screen
):
    register(gateway.url, household("H001", visitor=VISITOR_PHONE))
    register(gateway.url, household("H002", visitor="+8613911113333"))
    token = account(gateway.url, name="王值班", role="operator", township="某镇")
    page = screen.page
    screen.sign_in(gateway.url, token)
    page.click("nav >> text=预警")
    page.click("text=发布预警")
    page.get_by_label("标题").fill("台风“海葵”将于今晚登陆")
    page.get_by_label("内容").fill("请今晚前联系每位老人，必要时转移至安置点。")
    page.click("text=发布并通知探访员")
    progress = page.locator("[data-testid=accounted]")
    expect(progress).to_have_text("已确认 0/2")
    warning_id = page.evaluate("location.hash").rsplit("/", 1)[-1]

    # A visitor accounts for one elder elsewhere (by the API here; by SMS in life): live.
    visitor = account(gateway.url, name="李探访", role="visitor", phone=VISITOR_PHONE)
    marked = httpx.post(
        f"{gateway.url}/api/warnings/{warning_id}/checks",
        json={"household_id": "H001", "status": "safe"},
        headers={"Authorization": f"Bearer {visitor}"},
        timeout=10,
    )
    assert marked.status_code == 200, marked.text
    expect(progress).to_have_text("已确认 1/2")
    expect(page.locator("tr[data-household=H001]")).to_contain_text("平安")
    screen.shot("warning-accounted")
