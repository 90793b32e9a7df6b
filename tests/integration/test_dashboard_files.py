"""The dashboard's page and files as the gateway serves them (no browser needed)."""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import NoReturn

import httpx
import pytest

from gateway.api.routers.dashboard import IMPORTS, STATIC, VENDOR
from tests.integration.harness import api_client, offline_gateway

TOKEN = "test-token-0123456789"


@pytest.fixture
async def client(sqlite_url: str, unique_id: str) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        offline_gateway(sqlite_url, unique_id) as gateway,
        api_client(gateway, TOKEN) as c,
    ):
        yield c


async def test_the_page_allows_only_its_own_import_map_by_hash(client: httpx.AsyncClient):
    page = await client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    (import_map,) = re.findall(r'<script type="importmap">(.*?)</script>', page.text)
    digest = base64.b64encode(hashlib.sha256(import_map.encode()).digest()).decode()
    policy = page.headers["content-security-policy"]
    assert f"script-src 'self' 'sha256-{digest}'" in policy
    assert "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy
    # No token is needed to load the page: it asks for one, and the API checks it.
    assert '<script type="module" src="/static/app.js">' in page.text


async def test_every_package_the_page_imports_is_served(client: httpx.AsyncClient):
    for url in IMPORTS.values():
        response = await client.get(url)
        assert response.status_code == 200, url
        assert "javascript" in response.headers["content-type"]
    css = await client.get("/vendor/uplot.css")
    assert css.status_code == 200
    assert "text/css" in css.headers["content-type"]
    assert len(VENDOR) == len(IMPORTS) + 1


@pytest.mark.parametrize(
    "path",
    [
        "/vendor/preact",
        "/vendor/..%2Fpackage.json",
        "/vendor/%2E%2E/%2E%2E/pyproject.toml",
        "/static/%2E%2E/api/routers/dashboard.py",
        "/vendor/left-pad.js",
    ],
)
async def test_nothing_else_of_node_modules_or_the_source_is_reachable(
    client: httpx.AsyncClient, path: str
):
    response = await client.get(path)
    assert response.status_code == 404, (path, response.text[:200])


async def test_the_page_modules_are_served_as_javascript(client: httpx.AsyncClient):
    for name in ("app.js", "live.js", "views/overview.js", "style.css"):
        response = await client.get(f"/static/{name}")
        assert response.status_code == 200, name
    assert "javascript" in (await client.get("/static/app.js")).headers["content-type"]


async def test_me_says_who_the_token_stands_for(client: httpx.AsyncClient):
    assert (await client.get("/api/me")).status_code == 401
    me = await client.get("/api/me", headers={"Authorization": f"Bearer {TOKEN}"})
    assert me.json() == {
        "name": "admin",
        "role": "admin",
        "township": None,
        "sees_personal_data": True,
    }


MODULES = sorted(STATIC.rglob("*.js"))


@pytest.mark.parametrize("module", MODULES, ids=[str(m.relative_to(STATIC)) for m in MODULES])
def test_every_module_of_the_page_parses(
    module: Path, missing_service: Callable[[str], NoReturn]
) -> None:
    # The browser tests run them; this names the file and line of a syntax error at once.
    node = shutil.which("node")
    if node is None:
        missing_service("no node on PATH (Debian: apt install nodejs)")
    checked = subprocess.run(
        [node, "--input-type=module", "--check"],
        input=module.read_bytes(),
        capture_output=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr.decode()
