"""The shipped Mosquitto configuration (config/mosquitto/), run on a real mosquitto.

Each broker here runs config/mosquitto/mosquitto.conf itself (see shipped_mosquitto.py), with
certificates from config/mosquitto/make-certs.sh, password files from mosquitto_passwd and the
shipped ACL files. Home hubs connect over TLS with their household id as username; the gateway
connects on the loopback listener, as in production.
"""

from __future__ import annotations

import asyncio
import os
import queue
import secrets
import shutil
import socket
import ssl
import stat
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from gateway.clock import SystemClock
from gateway.config import MqttSettings
from gateway.ingest.mqtt import MqttIngest
from tests.conftest import missing_service
from tests.integration.shipped_mosquitto import (
    MAKE_CERTS,
    SHIPPED_CONFIG,
    SHIPPED_DIR,
    ShippedMosquitto,
    derive_config,
    which,
)

TIMEOUT_S = 5.0
GATEWAY_USER = "iot-gateway"
HOUSEHOLDS = ("H001", "H002")


# --- tools and files ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tools() -> dict[str, str]:
    """Paths of the programs these tests run; a missing one skips (or fails, in CI)."""
    found = {tool: which(tool) for tool in ("mosquitto", "mosquitto_passwd", "openssl", "bash")}
    missing = sorted(tool for tool, path in found.items() if path is None)
    if missing:
        missing_service(f"not installed: {', '.join(missing)} (Debian: mosquitto, openssl)")
    return {tool: path for tool, path in found.items() if path is not None}


def make_certs(
    tools: dict[str, str], directory: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tools["bash"], str(MAKE_CERTS), "-d", str(directory), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@dataclass(frozen=True)
class Site:
    """What the brokers of this module read from /etc/mosquitto, made once in `etc`."""

    etc: Path
    passwords: dict[str, str] = field(repr=False)

    @property
    def ca_file(self) -> Path:
        return self.etc / "certs" / "ca.crt"

    def client_cert(self, household: str) -> tuple[Path, Path]:
        base = self.etc / "certs" / "clients" / household
        return base.with_suffix(".crt"), base.with_suffix(".key")


@pytest.fixture(scope="module")
def site(tools: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Site:
    """Certificates, password files and ACLs made as README.md tells an operator to."""
    etc = tmp_path_factory.mktemp("site") / "etc"
    certs = etc / "certs"
    for args in (("server", "localhost", "127.0.0.1"), ("client", *HOUSEHOLDS)):
        result = make_certs(tools, certs, *args)
        assert result.returncode == 0, result.stderr
    passwords = {user: secrets.token_urlsafe(12) for user in (GATEWAY_USER, *HOUSEHOLDS)}
    for file, users in (("passwd-gateway", [GATEWAY_USER]), ("passwd-hubs", HOUSEHOLDS)):
        (etc / file).touch(mode=0o600)
        for user in users:
            subprocess.run(
                [tools["mosquitto_passwd"], "-b", str(etc / file), user, passwords[user]],
                check=True,
                capture_output=True,
                timeout=30,
            )
    for acl in ("acl-gateway", "acl-hubs"):
        shutil.copy(SHIPPED_DIR / acl, etc / acl)
    return Site(etc, passwords)


@contextmanager
def _running(
    tools: dict[str, str], site: Site, root: Path, **options: Any
) -> Iterator[ShippedMosquitto]:
    """A broker on the shipped configuration, reading a copy of `site`'s files."""
    shutil.copytree(site.etc, root / "etc")
    with ShippedMosquitto(tools["mosquitto"], root, **options) as broker:
        yield broker


@pytest.fixture(scope="module")
def broker(
    tools: dict[str, str], site: Site, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ShippedMosquitto]:
    """The shipped configuration as it is."""
    with _running(tools, site, tmp_path_factory.mktemp("broker")) as broker:
        yield broker


# --- MQTT clients -------------------------------------------------------------------------------


class Client:
    """A paho-mqtt client (MQTT 3.1.1) that records its connection's fate and its messages."""

    def __init__(
        self,
        port: int,
        *,
        client_id: str = "",
        username: str | None = None,
        password: str | None = None,
        ca_file: Path | None = None,
        cert: tuple[Path, Path] | None = None,
        host: str = "127.0.0.1",
        clean_session: bool = True,
    ) -> None:
        self.host, self.port = host, port
        self.paho = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean_session,
            protocol=MQTTProtocolVersion.MQTTv311,
        )
        if username is not None:
            self.paho.username_pw_set(username, password)
        if ca_file is not None:
            certfile, keyfile = (str(cert[0]), str(cert[1])) if cert else (None, None)
            self.paho.tls_set(
                ca_certs=str(ca_file),
                certfile=certfile,
                keyfile=keyfile,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        # A lost connection stays lost while the test looks (paho would reconnect after 1 s).
        self.paho.reconnect_delay_set(60, 60)
        self.outcome: queue.Queue[str] = queue.Queue()
        self.disconnects: list[str] = []
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._subscribed = threading.Event()
        self.granted: list[ReasonCode] = []
        self.paho.on_connect = self._on_connect
        self.paho.on_disconnect = self._on_disconnect
        self.paho.on_subscribe = self._on_subscribe
        self.paho.on_message = lambda _c, _u, m: self.messages.put((m.topic, bytes(m.payload)))

    def _on_connect(self, *args: Any) -> None:
        reason: ReasonCode = args[3]
        self.outcome.put(f"refused: {reason}" if reason.is_failure else "connected")

    def _on_disconnect(self, *args: Any) -> None:
        reason: ReasonCode = args[3]
        self.disconnects.append(str(reason))
        self.outcome.put(f"disconnected: {reason}")

    def _on_subscribe(self, *args: Any) -> None:
        self.granted = list(args[3])
        self._subscribed.set()

    def connect(self) -> str:
        """'connected', or how the attempt failed ('refused: ...', 'disconnected: ...', ...)."""
        try:
            self.paho.connect(self.host, self.port, keepalive=30)
        except OSError as exc:  # ssl.SSLError included: a failed TLS handshake
            return f"error: {exc!r}"
        self.paho.loop_start()
        try:
            return self.outcome.get(timeout=TIMEOUT_S)
        except queue.Empty:
            return "no answer"

    def close(self) -> None:
        self.paho.disconnect()
        self.paho.loop_stop()

    def subscribe(self, topic: str) -> list[ReasonCode]:
        self._subscribed.clear()
        self.paho.subscribe(topic, qos=1)
        assert self._subscribed.wait(TIMEOUT_S), "no SUBACK"
        return self.granted

    def publish(self, topic: str, payload: bytes) -> None:
        info = self.paho.publish(topic, payload, qos=1)
        info.wait_for_publish(TIMEOUT_S)
        assert info.is_published(), "no PUBACK"

    def receive_until(self, topic: str) -> list[tuple[str, bytes]]:
        """Every message received up to and including the first on `topic`."""
        seen: list[tuple[str, bytes]] = []
        while not seen or seen[-1][0] != topic:
            try:
                seen.append(self.messages.get(timeout=TIMEOUT_S))
            except queue.Empty:
                pytest.fail(f"no message on {topic} within {TIMEOUT_S} s; received {seen}")
        return seen


class Clients:
    """Opens clients for one test and closes them all at its end."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self._open: list[Client] = []

    def attempt(self, port: int, **options: Any) -> tuple[Client, str]:
        """A client and the outcome of its connection attempt."""
        client = Client(port, **options)
        self._open.append(client)
        return client, client.connect()

    def connected(self, port: int, **options: Any) -> Client:
        client, outcome = self.attempt(port, **options)
        assert outcome == "connected", f"{options.get('username')!r} on port {port}: {outcome}"
        return client

    def gateway(self, broker: ShippedMosquitto, client_id: str = GATEWAY_USER) -> Client:
        """A gateway process: loopback listener, persistent session, subscribed to homes/#."""
        client = self.connected(
            broker.ports[1883],
            client_id=client_id,
            username=GATEWAY_USER,
            password=self.site.passwords[GATEWAY_USER],
            clean_session=False,
        )
        assert not client.subscribe("homes/#")[0].is_failure
        return client

    def hub(self, broker: ShippedMosquitto, household: str, **options: Any) -> Client:
        """A household's home hub on the TLS listener, logged in as its household id."""
        options = {
            "username": household,
            "password": self.site.passwords[household],
            "ca_file": self.site.ca_file,
            **options,
        }
        return self.connected(broker.ports[8883], **options)

    def close(self) -> None:
        for client in self._open:
            client.close()


@pytest.fixture
def clients(site: Site) -> Iterator[Clients]:
    opened = Clients(site)
    try:
        yield opened
    finally:
        opened.close()


# --- households and client ids ------------------------------------------------------------------


@pytest.mark.mqtt
def test_a_hub_writes_its_own_household_over_tls_and_no_other(
    broker: ShippedMosquitto, clients: Clients, unique_id: str
) -> None:
    gateway = clients.gateway(broker)
    hub = clients.hub(broker, "H001")
    foreign, own = f"homes/H002/btn-{unique_id}/event", f"homes/H001/btn-{unique_id}/event"

    hub.publish(foreign, b'{"event":"sos"}')  # acknowledged, then dropped by the broker
    hub.publish(own, b'{"event":"sos"}')

    # One publisher's QoS 1 messages arrive in order: had the first passed, it came before.
    seen = gateway.receive_until(own)
    assert seen[-1] == (own, b'{"event":"sos"}')
    assert foreign not in [topic for topic, _ in seen]


@pytest.mark.mqtt
def test_a_hub_reads_nothing(broker: ShippedMosquitto, clients: Clients, unique_id: str) -> None:
    gateway = clients.gateway(broker)
    reader = clients.hub(broker, "H001")
    # Mosquitto 2.0 acknowledges the subscriptions; the ACL is checked on delivery.
    reader.subscribe("homes/#")
    reader.subscribe("homes/H001/#")
    other, own = f"homes/H002/btn-{unique_id}/event", f"homes/H001/btn-{unique_id}/event"
    clients.hub(broker, "H002").publish(other, b"H002's")
    gateway.receive_until(other)
    # What the broker sent the reader before acknowledging this is in its queue by now.
    reader.publish(own, b"H001's")
    gateway.receive_until(own)

    assert reader.messages.empty()


@pytest.mark.mqtt
def test_a_hub_cannot_take_the_gateways_client_ids(
    broker: ShippedMosquitto, clients: Clients, unique_id: str
) -> None:
    gateways = [clients.gateway(broker, GATEWAY_USER), clients.gateway(broker, "iot-gateway-2")]
    topic = f"homes/H001/btn-{unique_id}/event"

    for taken in ("iot-gateway", "iot-gateway-2"):
        hub = clients.hub(broker, "H001", client_id=taken)
        hub.publish(topic, taken.encode())
        hub.close()
    last = f"homes/H002/btn-{unique_id}/event"
    clients.hub(broker, "H002", client_id="iot-gateway").publish(last, b"last")

    for gateway in gateways:
        seen = gateway.receive_until(last)
        assert [payload for t, payload in seen if t == topic] == [b"iot-gateway", b"iot-gateway-2"]
        assert gateway.disconnects == []
        assert gateway.paho.is_connected()


@pytest.fixture(scope="module")
def broker_without_clientid_guard(
    tools: dict[str, str], site: Site, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ShippedMosquitto]:
    """The shipped configuration less the line that ties a hub's client id to its username."""
    root = tmp_path_factory.mktemp("broker-unguarded")
    with _running(tools, site, root, without=["use_username_as_clientid true"]) as broker:
        yield broker


@pytest.mark.mqtt
def test_without_the_guard_a_hub_knocks_the_gateway_off(
    broker_without_clientid_guard: ShippedMosquitto, clients: Clients
) -> None:
    # The control for the test above: its checks do see a takeover when there is one.
    broker = broker_without_clientid_guard
    gateway = clients.gateway(broker)

    clients.hub(broker, "H001", client_id=GATEWAY_USER)

    assert gateway.outcome.get(timeout=TIMEOUT_S).startswith("disconnected")
    assert gateway.disconnects


@pytest.mark.mqtt
def test_a_household_is_added_and_removed_by_its_password_entry_and_a_reload(
    tools: dict[str, str], broker: ShippedMosquitto, clients: Clients, unique_id: str
) -> None:
    household, password = f"H{unique_id}", secrets.token_urlsafe(12)
    gateway = clients.gateway(broker)
    login = {"username": household, "password": password, "ca_file": clients.site.ca_file}
    assert clients.attempt(broker.ports[8883], **login)[1].startswith("refused")

    passwd_hubs = broker.root / "etc" / "passwd-hubs"
    subprocess.run(
        [tools["mosquitto_passwd"], "-b", str(passwd_hubs), household, password],
        check=True,
        capture_output=True,
        timeout=30,
    )
    broker.reload()

    deadline = time.monotonic() + TIMEOUT_S
    hub, outcome = clients.attempt(broker.ports[8883], **login)
    while outcome != "connected":  # mosquitto reloads when its main loop next comes round
        assert time.monotonic() < deadline, f"{household} after the reload: {outcome}"
        time.sleep(0.1)
        hub, outcome = clients.attempt(broker.ports[8883], **login)
    topic = f"homes/{household}/btn-1/event"
    hub.publish(topic, b"new household")
    assert gateway.receive_until(topic)[-1] == (topic, b"new household")

    # Removing the household takes its hub off at the next reload, and only its hub.
    subprocess.run(
        [tools["mosquitto_passwd"], "-D", str(passwd_hubs), household],
        check=True,
        capture_output=True,
        timeout=30,
    )
    broker.reload()
    assert hub.outcome.get(timeout=TIMEOUT_S).startswith("disconnected")
    assert gateway.disconnects == []


@pytest.mark.mqtt
def test_a_new_server_certificate_takes_effect_on_reload(
    tools: dict[str, str], site: Site, tmp_path: Path, clients: Clients
) -> None:
    with _running(tools, site, tmp_path) as broker:
        hub = clients.hub(broker, "H001")
        certs = broker.root / "etc" / "certs"
        old = _served_certificate(broker.ports[8883], site.ca_file)

        result = make_certs(tools, certs, "-f", "server", "localhost", "127.0.0.1")
        assert result.returncode == 0, result.stderr
        broker.reload()

        new = (certs / "server.crt").read_bytes()
        deadline = time.monotonic() + TIMEOUT_S
        while (served := _served_certificate(broker.ports[8883], site.ca_file)) == old:
            assert time.monotonic() < deadline, "still the old certificate after the reload"
            time.sleep(0.1)
        assert served == ssl.DER_cert_to_PEM_cert(ssl.PEM_cert_to_DER_cert(new.decode()))
        hub.publish("homes/H001/btn-1/event", b"still connected")  # hubs online stay so


def _served_certificate(port: int, ca_file: Path) -> str:
    context = ssl.create_default_context(cafile=str(ca_file))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return ssl.DER_cert_to_PEM_cert(der)


# --- authentication -----------------------------------------------------------------------------


@pytest.mark.mqtt
def test_plain_mqtt_on_the_tls_port_fails(broker: ShippedMosquitto, clients: Clients) -> None:
    password = clients.site.passwords["H001"]
    _, outcome = clients.attempt(broker.ports[8883], username="H001", password=password)
    assert outcome != "connected"
    assert not outcome.startswith("refused")  # no MQTT answer at all: the TLS layer hung up


@pytest.mark.mqtt
@pytest.mark.parametrize(
    ("username", "password"),
    [("H999", "whatever"), ("H001", "wrong"), ("H001", None), (None, None)],
    ids=["unknown-user", "wrong-password", "no-password", "anonymous"],
)
def test_the_hub_listener_refuses_who_has_no_valid_login(
    broker: ShippedMosquitto, clients: Clients, username: str | None, password: str | None
) -> None:
    port, ca_file = broker.ports[8883], clients.site.ca_file
    _, outcome = clients.attempt(port, username=username, password=password, ca_file=ca_file)
    assert outcome.startswith("refused")


@pytest.mark.mqtt
def test_each_listener_knows_only_its_own_users(broker: ShippedMosquitto, clients: Clients) -> None:
    passwords, ca_file = clients.site.passwords, clients.site.ca_file
    gateway_login = {"username": GATEWAY_USER, "password": passwords[GATEWAY_USER]}
    hub_login = {"username": "H001", "password": passwords["H001"]}

    _, gateway_on_hub_port = clients.attempt(broker.ports[8883], ca_file=ca_file, **gateway_login)
    _, hub_on_gateway_port = clients.attempt(broker.ports[1883], **hub_login)

    assert gateway_on_hub_port.startswith("refused")
    assert hub_on_gateway_port.startswith("refused")


@pytest.mark.mqtt
def test_the_hub_listener_speaks_tls_1_2_and_later_only(
    broker: ShippedMosquitto, clients: Clients
) -> None:
    def handshake(version: ssl.TLSVersion) -> str:
        context = ssl.create_default_context(cafile=str(clients.site.ca_file))
        # Let the client offer old versions, so a refusal is the broker's.
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        context.minimum_version = context.maximum_version = version
        with socket.create_connection(("127.0.0.1", broker.ports[8883]), timeout=TIMEOUT_S) as raw:
            try:
                with context.wrap_socket(raw, server_hostname="localhost") as tls:
                    return tls.version() or "?"
            except ssl.SSLError as exc:
                return exc.reason or str(exc)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLSVersion.TLSv1_1 is deprecated
        old = handshake(ssl.TLSVersion.TLSv1_1)
    assert old == "TLSV1_ALERT_PROTOCOL_VERSION"
    assert handshake(ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    assert handshake(ssl.TLSVersion.TLSv1_3) == "TLSv1.3"


# --- optional blocks of the shipped configuration -----------------------------------------------


@pytest.fixture(scope="module")
def broker_with_hub_certificates(
    tools: dict[str, str], site: Site, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ShippedMosquitto]:
    root = tmp_path_factory.mktemp("broker-hub-certificates")
    with _running(tools, site, root, enable=["hub-certificates"]) as broker:
        yield broker


@pytest.mark.mqtt
def test_with_hub_certificates_a_hub_needs_its_certificate_and_password(
    broker_with_hub_certificates: ShippedMosquitto, clients: Clients, unique_id: str
) -> None:
    broker, site = broker_with_hub_certificates, clients.site
    gateway = clients.gateway(broker)
    login = {"username": "H001", "password": site.passwords["H001"], "ca_file": site.ca_file}

    _, without_certificate = clients.attempt(broker.ports[8883], **login)
    _, without_password = clients.attempt(
        broker.ports[8883], cert=site.client_cert("H001"), **{**login, "password": "wrong"}
    )
    hub = clients.hub(broker, "H001", cert=site.client_cert("H001"))
    topic = f"homes/H001/btn-{unique_id}/event"
    hub.publish(topic, b"with certificate")

    assert without_certificate != "connected"
    assert without_password.startswith("refused")
    assert gateway.receive_until(topic)[-1] == (topic, b"with certificate")


@pytest.fixture(scope="module")
def broker_with_gateway_tls(
    tools: dict[str, str], site: Site, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ShippedMosquitto]:
    root = tmp_path_factory.mktemp("broker-gateway-tls")
    with _running(tools, site, root, enable=["gateway-tls"]) as broker:
        yield broker


@pytest.mark.mqtt
async def test_the_gateway_connects_over_tls_with_its_ca_file(
    broker_with_gateway_tls: ShippedMosquitto, clients: Clients, unique_id: str
) -> None:
    broker, site = broker_with_gateway_tls, clients.site
    password = site.passwords[GATEWAY_USER]
    settings = MqttSettings(
        url=f"mqtts://{GATEWAY_USER}:{password}@localhost:{broker.ports[8884]}",
        ca_file=site.ca_file,
        client_id=f"iot-gateway-{unique_id}",
    )
    topic = f"homes/H001/btn-{unique_id}/event"
    ingest = MqttIngest(settings, ["homes/#"], SystemClock())
    async with ingest:
        assert await ingest.wait_subscribed(TIMEOUT_S)
        await asyncio.to_thread(clients.hub(broker, "H001").publish, topic, b"over tls")
        batch = await asyncio.wait_for(anext(aiter(ingest.batches())), TIMEOUT_S)
        ingest.ack(batch)
    assert [(m.topic, m.payload) for m in batch] == [(topic, b"over tls")]

    hub_login = {"username": "H001", "password": site.passwords["H001"], "ca_file": site.ca_file}
    _, hub_on_gateway_port = await asyncio.to_thread(
        clients.attempt, broker.ports[8884], **hub_login
    )
    assert hub_on_gateway_port.startswith("refused")


# --- make-certs.sh and the configuration's derivation -------------------------------------------


def _modes(directory: Path) -> dict[str, int]:
    return {
        str(path.relative_to(directory)): stat.S_IMODE(path.stat().st_mode)
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def _contents(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*.*")}


def _san(tools: dict[str, str], cert: Path) -> str:
    result = subprocess.run(
        [tools["openssl"], "x509", "-in", str(cert), "-noout", "-ext", "subjectAltName"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return result.stdout.splitlines()[-1].strip()


def test_make_certs_keeps_what_exists_and_keys_private(
    tools: dict[str, str], tmp_path: Path
) -> None:
    certs = tmp_path / "certs"
    assert make_certs(tools, certs, "server", "mqtt.example.cn", "203.0.113.7").returncode == 0
    assert make_certs(tools, certs, "client", "H001").returncode == 0
    before = _contents(certs)

    again = make_certs(tools, certs, "server", "203.0.113.7", "mqtt.example.cn")
    client_again = make_certs(tools, certs, "client", "H001")

    assert (again.returncode, client_again.returncode) == (0, 0)
    assert _contents(certs) == before
    assert _san(tools, certs / "server.crt") == "DNS:mqtt.example.cn, IP Address:203.0.113.7"
    assert _modes(certs) == {
        "ca.crt": 0o644,
        "ca.key": 0o600,
        "clients/H001.crt": 0o644,
        "clients/H001.key": 0o600,
        "server.crt": 0o644,
        "server.key": 0o600,
    }
    assert stat.S_IMODE(certs.stat().st_mode) == 0o700


def test_make_certs_replaces_a_server_certificate_only_when_told(
    tools: dict[str, str], tmp_path: Path
) -> None:
    certs = tmp_path / "certs"
    assert make_certs(tools, certs, "server", "old.example.cn").returncode == 0
    ca, old_key = (certs / "ca.crt").read_bytes(), (certs / "server.key").read_bytes()

    refused = make_certs(tools, certs, "server", "new.example.cn")
    assert refused.returncode != 0
    assert "-f" in refused.stderr
    assert _san(tools, certs / "server.crt") == "DNS:old.example.cn"

    assert make_certs(tools, certs, "-f", "server", "new.example.cn").returncode == 0
    assert _san(tools, certs / "server.crt") == "DNS:new.example.cn"
    assert (certs / "server.key").read_bytes() != old_key  # a rotation makes a new key
    assert (certs / "ca.crt").read_bytes() == ca


@pytest.mark.parametrize("household", ["iot-gateway", "iot-gateway-2", "H/001", "H+"])
def test_make_certs_refuses_a_hub_named_like_the_gateway_or_a_topic_pattern(
    tools: dict[str, str], tmp_path: Path, household: str
) -> None:
    result = make_certs(tools, tmp_path / "certs", "client", household)
    assert result.returncode != 0
    assert not (tmp_path / "certs" / "clients").exists()


def test_make_certs_without_a_command_shows_its_usage(
    tools: dict[str, str], tmp_path: Path
) -> None:
    result = make_certs(tools, tmp_path / "certs")
    assert result.returncode == 2
    assert "Usage:" in result.stderr


def test_the_derived_configuration_moves_every_path_and_port(tmp_path: Path) -> None:
    ports = {1883: 41883, 8883: 48883, 8884: 48884}
    config = derive_config(SHIPPED_CONFIG.read_text(), tmp_path, ports, enable=["gateway-tls"])
    options = [line for line in config.splitlines() if line and not line.startswith("#")]

    assert [line for line in options if line.startswith("listener")] == [
        "listener 41883 127.0.0.1",
        "listener 48883 127.0.0.1",
        "listener 48884 127.0.0.1",
    ]
    paths = [word for line in options for word in line.split()[1:] if word.startswith("/")]
    assert paths
    assert all(path.startswith(f"{tmp_path}/") for path in paths)
    with pytest.raises(ValueError, match="no test port"):
        derive_config("listener 9999\n", tmp_path, ports)
    with pytest.raises(ValueError, match="cannot relocate"):
        derive_config("password_file /srv/passwd\n", tmp_path, ports)
    with pytest.raises(ValueError, match="no optional block"):
        derive_config(SHIPPED_CONFIG.read_text(), tmp_path, ports, enable=["nonesuch"])


def test_make_certs_is_executable() -> None:
    assert os.access(MAKE_CERTS, os.X_OK)
