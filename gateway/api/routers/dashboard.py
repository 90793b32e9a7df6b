"""The control-room dashboard: one page at `/`, its modules under /static/, and the browser
packages npm installed (gateway/web/package-lock.json) under /vendor/.

There is no build step: the page loads ES modules and an import map names the packages. Only
the files listed in `VENDOR` are served from node_modules, so nothing else there is reachable.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import FileResponse, HTMLResponse, Response

WEB = Path(__file__).resolve().parents[2] / "web"
STATIC = WEB / "static"
NODE_MODULES = WEB / "node_modules"

VENDOR: dict[str, str] = {
    "preact.js": "preact/dist/preact.mjs",
    "preact-hooks.js": "preact/hooks/dist/hooks.mjs",
    "htm.js": "htm/dist/htm.mjs",
    "uplot.js": "uplot/dist/uPlot.esm.js",
    "uplot.css": "uplot/dist/uPlot.min.css",
}
"""What the page loads from node_modules, by the name it asks for."""

IMPORTS = {
    "preact": "/vendor/preact.js",
    "preact/hooks": "/vendor/preact-hooks.js",
    "htm": "/vendor/htm.js",
    "uplot": "/vendor/uplot.js",
}

MISSING_PACKAGES = """<!doctype html><html lang="zh-CN"><meta charset="utf-8">
<title>控制室 · 未安装前端包</title>
<p>控制室页面所需的浏览器包尚未安装。请在项目目录运行 <code>make install</code>
（即在 gateway/web 中运行 <code>npm ci</code>），然后刷新本页。</p>
<p lang="en">The dashboard's browser packages are not installed: run <code>make install</code>
(<code>npm ci</code> in gateway/web), then reload this page.</p></html>"""

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True, slots=True)
class Page:
    html: str
    csp: str


def _page() -> Page:
    """The page with its import map inline, and a policy that allows that script by hash."""
    import_map = json.dumps({"imports": IMPORTS}, separators=(",", ":"))
    digest = base64.b64encode(hashlib.sha256(import_map.encode()).digest()).decode()
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    html = html.replace("<!--importmap-->", f'<script type="importmap">{import_map}</script>')
    csp = "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' 'sha256-{digest}'",
            # uPlot and the charts size their parts with style attributes.
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'self'",
        ]
    )
    return Page(html, csp)


def _packages_installed() -> bool:
    return all((NODE_MODULES / path).is_file() for path in VENDOR.values())


@router.get("/", response_class=HTMLResponse)
async def dashboard(request: Request) -> Response:
    """The dashboard (503 with what to do when npm has not installed its packages)."""
    if not _packages_installed():
        return HTMLResponse(MISSING_PACKAGES, status_code=status.HTTP_503_SERVICE_UNAVAILABLE)
    page: Page | None = getattr(request.app.state, "dashboard_page", None)
    if page is None:
        page = request.app.state.dashboard_page = _page()
    return HTMLResponse(
        page.html,
        headers={
            "Content-Security-Policy": page.csp,
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


@router.get("/vendor/{name}")
async def vendor(name: str) -> FileResponse:
    """A browser package's file, as npm installed it."""
    path = VENDOR.get(name)
    if path is None or not (NODE_MODULES / path).is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    return FileResponse(NODE_MODULES / path, headers={"Cache-Control": "no-cache"})
