"""`iot-gateway` start-up refusals: one line on stderr and a non-zero exit, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import main


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    for name in [n for n in os.environ if n.startswith("GATEWAY_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("GATEWAY_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("GATEWAY_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}")


@pytest.mark.parametrize("token", ["admin", "change-me", "short-token"])
def test_run_refuses_a_placeholder_or_short_admin_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], token: str
):
    monkeypatch.setenv("GATEWAY_ADMIN_TOKEN", token)
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("iot-gateway: configuration error: admin_token (GATEWAY_ADMIN_TOKEN)")
    assert err.count("\n") == 1


@pytest.mark.parametrize("command", [["run"], ["db", "upgrade"]])
def test_a_database_folder_that_cannot_be_created_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: list[str]
):
    monkeypatch.setenv("GATEWAY_ADMIN_TOKEN", "cli-test-token-0123456789")
    monkeypatch.setenv("GATEWAY_DATABASE_URL", "sqlite+aiosqlite:////proc/nope/x.db")
    assert main(command) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        "iot-gateway: cannot use the database sqlite+aiosqlite:////proc/nope/x.db: "
        "cannot create folder /proc/nope: "
    )
    assert err.count("\n") == 1


def test_a_database_path_that_is_a_folder_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
):
    folder = tmp_path / "gateway.db"
    folder.mkdir()
    monkeypatch.setenv("GATEWAY_ADMIN_TOKEN", "cli-test-token-0123456789")
    monkeypatch.setenv("GATEWAY_DATABASE_URL", f"sqlite+aiosqlite:///{folder}")
    assert main(["run"]) == 1
    assert capsys.readouterr().err == (
        f"iot-gateway: cannot use the database sqlite+aiosqlite:///{folder}: {folder} is a folder\n"
    )


def test_a_file_that_is_not_a_database_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
):
    # SQLAlchemy's message has a second line (a link); the CLI prints the first.
    path = tmp_path / "gateway.db"
    path.write_bytes(b"not a database" * 100)
    monkeypatch.setenv("GATEWAY_ADMIN_TOKEN", "cli-test-token-0123456789")
    monkeypatch.setenv("GATEWAY_DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    assert main(["run"]) == 1
    [*_, last] = capsys.readouterr().err.splitlines()
    assert last == (
        f"iot-gateway: cannot use the database sqlite+aiosqlite:///{path}: "
        "(sqlite3.DatabaseError) file is not a database"
    )


def test_the_cli_masks_phones_and_ids_in_every_loggers_output():
    program = """
import logging
from gateway.cli import _setup_logging
_setup_logging("INFO")
logging.getLogger("uvicorn.error").warning("peer sent +8613912345678")
try:
    raise RuntimeError("citizen 11010519491231002X")
except RuntimeError:
    logging.getLogger("sqlalchemy.engine").exception("insert of %s failed", "13800000000")
"""
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True
    )
    assert "uvicorn.error: peer sent +86139****5678" in result.stderr
    assert "sqlalchemy.engine: insert of 138****0000 failed" in result.stderr
    assert "RuntimeError: citizen 110105***********X" in result.stderr
    for whole in ("13912345678", "13800000000", "11010519491231002X"):
        assert whole not in result.stderr


def test_report_coverage_on_a_database_without_the_schema_is_one_line(
    capsys: pytest.CaptureFixture[str],
):
    assert main(["report", "coverage", "--month", "2026-11"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("iot-gateway: error: cannot read the database (sqlite+aiosqlite): ")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--month", "2026-13"], "--month: a month is YYYY-MM, e.g. 2026-11"),
        (["--month", "2999-01"], "--month: a month not in the future"),
        (["--out", "coverage.pdf"], "--out: a file ending in .csv or .xlsx"),
    ],
)
def test_report_coverage_refuses_a_bad_month_or_file_in_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], says: str
):
    assert main(["report", "coverage", *argv]) == 1
    assert capsys.readouterr().err == f"iot-gateway: error: {says}\n"
