"""The README's first command: `iot-gateway demo` shows both incidents within a minute."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx


def test_demo_shows_smoke_and_sos_alerts_and_their_sms_then_stops_cleanly(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env["GATEWAY_HTTP_PORT"] = "0"  # any free port
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        demo = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "demo"],
            cwd=tmp_path,
            env=env,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,  # Ctrl-C below goes to the demo's whole process group
        )
    try:
        deadline = time.monotonic() + 20
        while not (found := re.search(r"Alerts: +curl -H '([^']+)' (\S+)", err.read_text())):
            assert demo.poll() is None, err.read_text()
            assert time.monotonic() < deadline, err.read_text()
            time.sleep(0.2)
        header, url = found.groups()
        name, value = header.split(": ", 1)
        rules: set[str] = set()
        deadline = time.monotonic() + 60
        while rules != {"smoke_alarm", "call_button"}:
            assert time.monotonic() < deadline, (rules, err.read_text())
            time.sleep(1)
            rules = {a["rule"] for a in httpx.get(url, headers={name: value}).json()}
        deadline = time.monotonic() + 10
        while out.read_text().count("[SMS") < 2:
            assert time.monotonic() < deadline, out.read_text()
            time.sleep(0.2)
        text = out.read_text()
        for expected in ("烟雾", "一键呼叫", "王金山", "王玉兰"):
            assert expected in text
    finally:
        os.killpg(demo.pid, signal.SIGINT)
        returncode = demo.wait(20)
    assert returncode == 0, err.read_text()
    assert "Traceback" not in err.read_text()
    assert (tmp_path / "var" / "demo.db").exists()
