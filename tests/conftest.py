"""Test infrastructure shared by every test: real services (MQTT broker, databases), or a skip.

Environment:
- ``GATEWAY_TEST_MQTT_URL``: use this broker (e.g. ``mqtt://127.0.0.1:1883``); otherwise the
  tests start their own mosquitto if it is on PATH, else the embedded amqtt broker.
- ``GATEWAY_TEST_DATABASE_URL``: a PostgreSQL server to create throw-away databases on
  (e.g. ``postgresql+asyncpg://postgres@127.0.0.1:5432/test``); unset skips the PostgreSQL cases.
- ``GATEWAY_TEST_REQUIRE_SERVICES=1``: a missing service fails the test instead of skipping it,
  so CI cannot pass by testing nothing.

Everything here works per process, so pytest-xdist's workers (`make test`) each start their own
broker and make their own database templates, under names of their own.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sysconfig
import time
import traceback
import weakref
from collections.abc import Callable, Coroutine, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn, TypeVar
from urllib.parse import urlsplit

import asyncpg
import pytest
from sqlalchemy.engine import URL, make_url

from gateway.ingest.embedded_broker import EmbeddedBroker, free_port
from gateway.store.database import create_engine, upgrade
from tests.integration.harness import Publisher

MQTT_URL_ENV = "GATEWAY_TEST_MQTT_URL"
DATABASE_URL_ENV = "GATEWAY_TEST_DATABASE_URL"
REQUIRE_SERVICES_ENV = "GATEWAY_TEST_REQUIRE_SERVICES"

_T = TypeVar("_T")


# --- missing services ---------------------------------------------------------------------------


def services_required() -> bool:
    """Whether a missing service must fail the test rather than skip it."""
    return os.environ.get(REQUIRE_SERVICES_ENV, "").strip().lower() in {"1", "true", "yes"}


def missing_service(reason: str) -> NoReturn:
    """Skip the current test for want of a service, or fail it when services are required."""
    if services_required():
        pytest.fail(f"{reason} ({REQUIRE_SERVICES_ENV} is set)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(name="missing_service")
def _missing_service_fixture() -> Callable[[str], NoReturn]:
    """`missing_service` for other conftests and tests, which cannot import this module."""
    # pytest imports every conftest.py under the module name "conftest", so a nested conftest
    # cannot `from conftest import ...`; a fixture reaches them all.
    return missing_service


# --- leaked PostgreSQL connections -------------------------------------------------------------

# An asyncpg connection still open when its event loop has closed can never be closed properly:
# the garbage collector finds it later, in whatever test is running then ("Event loop is
# closed", "unclosed connection", "non-checked-in connection"). Every connection is noted with
# the test and the stack that made it, and the test whose loop closed under one fails.


@dataclass
class _MadeConnection:
    test: str
    stack: str
    loop: weakref.ref[asyncio.AbstractEventLoop]


_made: weakref.WeakKeyDictionary[asyncpg.Connection, _MadeConnection] = weakref.WeakKeyDictionary()
_orphans: list[asyncpg.Connection] = []
"""Reported already, kept from the garbage collector so a later test does not fail for them."""
_running_test = ["(no test)"]
_asyncpg_connect = asyncpg.connect
_LIBRARIES = ("<", sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"])


async def _noted_connect(*args: Any, **kwargs: Any) -> asyncpg.Connection:
    connection = await _asyncpg_connect(*args, **kwargs)
    # The project's frames only: pytest's, pluggy's and asyncio's would crowd them out.
    frames = [f for f in traceback.extract_stack()[:-1] if not f.filename.startswith(_LIBRARIES)]
    stack = "".join(traceback.format_list(frames))
    _made[connection] = _MadeConnection(
        _running_test[0], stack, weakref.ref(asyncio.get_running_loop())
    )
    return connection


# SQLAlchemy's asyncpg dialect and the live feed look asyncpg.connect up at each call.
asyncpg.connect = _noted_connect


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    _running_test[0] = item.nodeid
    try:
        return (yield)
    finally:
        _running_test[0] = "(between tests)"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    yield  # the test's fixtures, its event loop among them, are gone now
    orphaned = []
    for connection, made in list(_made.items()):
        loop = made.loop()
        if (loop is None or loop.is_closed()) and not connection.is_closed():
            orphaned.append(made)
            _orphans.append(connection)
            del _made[connection]
    if orphaned:
        where = "\n".join(f"made in {m.test}:\n{m.stack}" for m in orphaned)
        pytest.fail(
            f"{len(orphaned)} PostgreSQL connection(s) still open after their event loop closed"
            f" (a task cancelled holding one, or an engine not disposed):\n{where}",
            pytrace=False,
        )


def _accepts_connections(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@pytest.fixture
def unique_id() -> str:
    """A short random hex id, to keep topics and household ids apart on a shared broker."""
    return secrets.token_hex(4)


# --- MQTT broker --------------------------------------------------------------------------------

BrokerKind = Literal["external", "mosquitto", "amqtt"]


@dataclass(frozen=True)
class MqttBroker:
    """The broker the test session uses: its URL and what kind of broker it is."""

    url: str
    kind: BrokerKind


def mqtt_host_port(url: str) -> tuple[str, int]:
    """Host and port of an ``mqtt://host[:port]`` URL (port 1883 by default)."""
    parts = urlsplit(url)
    if parts.scheme not in {"mqtt", "tcp"} or not parts.hostname:
        raise ValueError(f"not an mqtt://host:port URL: {url!r}")
    return parts.hostname, parts.port or 1883


@pytest.fixture(scope="session")
def mqtt_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MqttBroker]:
    """The session's MQTT broker: $GATEWAY_TEST_MQTT_URL, else our own mosquitto, else amqtt."""
    external = os.environ.get(MQTT_URL_ENV, "").strip()
    if external:
        host, port = mqtt_host_port(external)
        if not _accepts_connections(host, port):
            missing_service(f"no MQTT broker answers at {MQTT_URL_ENV}={external}")
        yield MqttBroker(external, "external")
        return
    mosquitto = shutil.which("mosquitto")
    if mosquitto is not None:
        with _MosquittoProcess(mosquitto, tmp_path_factory.mktemp("mosquitto")) as url:
            yield MqttBroker(url, "mosquitto")
        return
    with EmbeddedBroker(port=free_port()) as broker:
        yield MqttBroker(broker.url, "amqtt")


@pytest.fixture(scope="session")
def mqtt_url(mqtt_broker: MqttBroker) -> str:
    """URL of the session's MQTT broker, e.g. ``mqtt://127.0.0.1:1883``."""
    return mqtt_broker.url


@pytest.fixture(scope="session")
def mqtt_broker_kind(mqtt_broker: MqttBroker) -> BrokerKind:
    """Which broker `mqtt_url` points at (amqtt speaks MQTT 3.1.1 only and has no $share)."""
    return mqtt_broker.kind


@pytest.fixture
def publisher(mqtt_url: str) -> Iterator[Publisher]:
    """The homes' side: publishes to the broker as devices do, closed after the test."""
    device = Publisher(mqtt_url)
    yield device
    device.close()


class _MosquittoProcess:
    """A private mosquitto on a free loopback port, configured like the shipped one."""

    _START_ATTEMPTS = 3
    _START_TIMEOUT_S = 10.0

    def __init__(self, executable: str, workdir: Path, port: int | None = None) -> None:
        """`port`: a fixed one (to restart a broker where its clients expect it)."""
        self._executable = executable
        self._workdir = workdir
        self._port = port
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> str:
        # Another process may take the free port before mosquitto binds it: then try another.
        for _ in range(self._START_ATTEMPTS):
            port = self._port or free_port()
            if self._start(port):
                return f"mqtt://127.0.0.1:{port}"
        raise RuntimeError(
            f"mosquitto did not start in {self._START_ATTEMPTS} attempts;"
            f" its output ends with:\n{self._output_tail()}"
        )

    def _write_config(self, port: int) -> Path:
        config = self._workdir / "mosquitto.conf"
        # Run as whoever runs the tests: as root, mosquitto would otherwise switch to the
        # mosquitto user, which cannot write to pytest's private temporary directory.
        user = pwd.getpwuid(os.geteuid()).pw_name
        config.write_text(
            f"listener {port} 127.0.0.1\n"
            "allow_anonymous true\n"
            f"user {user}\n"
            "persistence true\n"
            f"persistence_location {self._workdir}/\n"
            # As in config/mosquitto: the default of 1000 drops an offline session's backlog.
            "max_queued_messages 100000\n"
            # As in config/mosquitto: the gateway holds the backlog, so it can take alarms first.
            "max_inflight_messages 20000\n"
            f"log_dest file {self._workdir}/mosquitto.log\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
        )
        return config

    def _start(self, port: int) -> bool:
        config = self._write_config(port)
        with (self._workdir / "stderr.log").open("ab") as stderr:
            process = subprocess.Popen(
                [self._executable, "-c", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        deadline = time.monotonic() + self._START_TIMEOUT_S
        while process.poll() is None and time.monotonic() < deadline:
            if _accepts_connections("127.0.0.1", port, timeout=0.2):
                self._process = process
                return True
            time.sleep(0.05)
        _terminate(process)
        return False

    def _output_tail(self) -> str:
        texts = []
        for name in ("stderr.log", "mosquitto.log"):
            path = self._workdir / name
            if path.exists():
                texts.append(path.read_text(errors="replace")[-2000:])
        return "\n".join(texts).strip() or "(nothing)"

    def __exit__(self, *exc_info: object) -> None:
        if self._process is not None:
            _terminate(self._process)
            self._process = None


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- databases ----------------------------------------------------------------------------------


def _sqlite_url(directory: Path) -> str:
    return f"sqlite+aiosqlite:///{directory / 'gateway.db'}"


def _run_async(coroutine: Coroutine[Any, Any, _T]) -> _T:
    # A worker thread with its own event loop: these fixtures are sync, and the test's event loop
    # (pytest-asyncio's) is not running yet during setup, nor any more during teardown.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


# Migrating a database takes about 0.3 s on SQLite and 0.4 s on PostgreSQL, and most tests want
# one at the head revision: the session migrates one template per backend, and each test gets a
# copy of it (a file copy; CREATE DATABASE ... TEMPLATE). Tests of the migrations themselves ask
# for `empty_database_url`.


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("sqlite-template")
    _run_async(_migrate(_sqlite_url(directory)))
    return directory / "gateway.db"


@pytest.fixture(scope="session")
def _postgres_template() -> Iterator[Callable[[], str]]:
    """Name of a migrated PostgreSQL database to copy, made on first use and dropped at the end."""
    made: list[str] = []

    def template() -> str:
        if not made:
            server = _postgres_server()
            name = f"gw_template_{secrets.token_hex(6)}"
            _create_postgres_database(server, name)
            url = server.set(database=name).render_as_string(hide_password=False)
            try:
                _run_async(_migrate(url))
            except BaseException:
                _run_async(_drop_database(server, name))
                raise
            made.append(name)
        return made[0]

    yield template
    if made:
        _run_async(_drop_database(_postgres_server(), made[0]))


def _sqlite_copy(template: Path, directory: Path) -> str:
    shutil.copyfile(template, directory / "gateway.db")
    return _sqlite_url(directory)


@pytest.fixture
def sqlite_url(tmp_path: Path, _sqlite_template: Path) -> str:
    """URL of a SQLite file of the test's own, in its temporary directory, at the head revision."""
    return _sqlite_copy(_sqlite_template, tmp_path)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    _sqlite_template: Path,
    _postgres_template: Callable[[], str],
) -> Iterator[str]:
    """URL of a database of the test's own at the head revision: once on SQLite, once on
    PostgreSQL (marked postgres)."""
    if request.param == "sqlite":
        yield _sqlite_copy(_sqlite_template, tmp_path)
    else:
        yield from _fresh_postgres_database(template=_postgres_template())


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of an empty database with no tables at all, for the migrations' own tests: once on
    SQLite, once on PostgreSQL (marked postgres)."""
    if request.param == "sqlite":
        yield _sqlite_url(tmp_path)
    else:
        yield from _fresh_postgres_database()


@pytest.fixture
def postgres_url(_postgres_template: Callable[[], str]) -> Iterator[str]:
    """URL of a PostgreSQL database of the test's own at the head revision, for tests only
    PostgreSQL can run (mark them `postgres`): several gateway processes sharing one database."""
    yield from _fresh_postgres_database(template=_postgres_template())


def _postgres_server() -> URL:
    raw = os.environ.get(DATABASE_URL_ENV, "").strip()
    if not raw:
        missing_service(f"{DATABASE_URL_ENV} is not set (no PostgreSQL server to test against)")
    server = make_url(raw)
    if server.get_backend_name() != "postgresql":
        pytest.fail(f"{DATABASE_URL_ENV} must be a postgresql+asyncpg:// URL, not {raw!r}")
    return server


def _create_postgres_database(server: URL, name: str, template: str | None = None) -> None:
    try:
        _run_async(_create_database(server, name, template))
    except (OSError, asyncpg.PostgresError) as exc:  # OSError covers refused and timed out
        where = server.render_as_string(hide_password=True)
        missing_service(f"cannot create a database on PostgreSQL at {where}: {exc!r}")


def _fresh_postgres_database(template: str | None = None) -> Iterator[str]:
    server = _postgres_server()
    name = f"gw_test_{secrets.token_hex(6)}"
    _create_postgres_database(server, name, template)
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        _run_async(_drop_database(server, name))


async def _admin_connection(server: URL) -> asyncpg.Connection:
    options: dict[str, Any] = {
        "host": server.host,
        "port": server.port,
        "user": server.username,
        "password": server.password,
        "timeout": 10,
    }
    try:
        return await asyncpg.connect(database=server.database, **options)
    except asyncpg.InvalidCatalogNameError:
        # The URL's database need not exist (a fresh server has only "postgres"): any database
        # will do to run CREATE/DROP DATABASE from.
        return await asyncpg.connect(database="postgres", **options)


async def _create_database(server: URL, name: str, template: str | None = None) -> None:
    connection = await _admin_connection(server)
    try:
        copy = f' TEMPLATE "{template}"' if template else ""
        await connection.execute(f'CREATE DATABASE "{name}"{copy}')
    finally:
        await connection.close()


async def _drop_database(server: URL, name: str) -> None:
    connection = await _admin_connection(server)
    try:
        # FORCE (PostgreSQL 13+) ends connections a test's engine left open, e.g. after a failure.
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()
