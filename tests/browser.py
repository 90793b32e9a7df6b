"""Debian's Chromium as the tests and benchmarks drive it (Playwright, `executable_path`)."""

from __future__ import annotations

import os
import shutil

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    # The machine has no internet: without these Chromium keeps retrying connections.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # The chime for a critical alert plays without a click on the page first.
    "--autoplay-policy=no-user-gesture-required",
]


def chromium_path() -> str | None:
    """$GATEWAY_TEST_CHROMIUM, else `chromium` on PATH, else None."""
    return os.environ.get("GATEWAY_TEST_CHROMIUM") or shutil.which("chromium")
