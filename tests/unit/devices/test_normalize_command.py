"""`iot-gateway normalize`: the canonical readings of one payload, as data (full precision)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.cli import main


def test_normalize_prints_the_value_the_device_measured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GATEWAY_CONFIG", raising=False)
    code = main(
        [
            "normalize",
            "--format",
            "shelly",
            "--topic",
            "homes/H001/shelly/plug-1/status/switch:0",
            "--payload",
            '{"id": 0, "apower": 11.5, "aenergy": {"total": 913.252}}',
        ]
    )
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["metric"]: (r["value"], r["unit"]) for r in lines} == {
        "power_w": (11.5, "W"),
        "energy_total_kwh": (0.913252, "kWh"),
    }
