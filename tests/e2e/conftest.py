"""The dashboard in headless Chromium (Debian's package, driven by Playwright for Python).

Each test runs real `iot-gateway run` processes against the real broker and a database, signs
in through the page and watches it. Screenshots are kept in $GATEWAY_TEST_ARTEFACTS (default
var/test-artefacts/e2e) for a person to look at after a run, failed or not.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, sync_playwright

from tests.browser import CHROMIUM_ARGS, chromium_path
from tests.integration.harness import HOUSEHOLD
from tests.integration.test_service import TOKEN, Service

ARTEFACTS = Path(os.environ.get("GATEWAY_TEST_ARTEFACTS", "var/test-artefacts")) / "e2e"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


# Module scope, not session: Playwright's sync API keeps an event loop running in this thread
# while it is started, and pytest-asyncio cannot run the other modules' async tests beside it.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def chromium(playwright: Playwright) -> Iterator[Browser | None]:
    """One browser for the module (None when there is no chromium to run)."""
    executable = chromium_path()
    if executable is None:
        yield None
        return
    browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def browser(chromium: Browser | None, missing_service: Callable[[str], NoReturn]) -> Browser:
    if chromium is None:
        missing_service("no chromium on PATH (Debian: apt install chromium)")
    return chromium


class Screen:
    """A page in a fresh browser context, whose console errors fail the test."""

    def __init__(self, browser: Browser, name: str, **context: Any) -> None:
        self.context = browser.new_context(locale="zh-CN", **context)
        self.page: Page = self.context.new_page()
        self.name = name
        self.errors: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))

    def _console(self, message: ConsoleMessage) -> None:
        # A refused WebSocket or fetch while the gateway is down is what a restart looks like.
        expected = ("WebSocket connection", "Failed to load resource", "net::ERR_")
        if message.type == "error" and not any(e in message.text for e in expected):
            self.errors.append(message.text)

    def sign_in(self, base_url: str, token: str) -> None:
        self.page.goto(f"{base_url}/")
        self.page.fill("#token", token)
        self.page.click("button[type=submit]")
        self.page.wait_for_selector("[data-testid=live-state][data-state=open]", timeout=10_000)

    def shot(self, label: str) -> Path:
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTEFACTS / f"{self.name}-{label}.png"
        self.page.screenshot(path=path, full_page=True)
        return path

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def screen(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Screen]:
    s = Screen(browser, request.node.name)
    yield s
    try:
        s.shot("last")
    finally:
        s.close()
    assert not s.errors, s.errors


@pytest.fixture
def gateway(tmp_path: Path, mqtt_url: str, unique_id: str) -> Iterator[Service]:
    svc = Service(tmp_path, mqtt_url, unique_id, {})
    svc.start()
    yield svc
    svc.stop()


def household(
    household_id: str, *, township: str = "某镇", village: str = "某村", visitor: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        **HOUSEHOLD,
        "id": household_id,
        "address": {**HOUSEHOLD["address"], "township": township, "village": village},
    }
    if visitor:
        body["visitors"] = [{"name": "探访员" + visitor[-4:], "phone": visitor}]
    return body


def register(base_url: str, body: dict[str, Any]) -> None:
    response = httpx.post(f"{base_url}/api/households", json=body, headers=AUTH, timeout=10)
    assert response.status_code == 201, response.text


def account(base_url: str, **body: Any) -> str:
    response = httpx.post(f"{base_url}/api/accounts", json=body, headers=AUTH, timeout=10)
    assert response.status_code == 201, response.text
    token = response.json()["token"]
    assert isinstance(token, str)
    return token
