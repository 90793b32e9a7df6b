from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import BaseModel

from gateway.config import ConfigError, SourceSettings, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch):
    for name in list(os.environ):
        if name.startswith("GATEWAY_") and not name.startswith("GATEWAY_TEST_"):
            monkeypatch.delenv(name)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults(tmp_path: Path):
    settings = load_settings(write(tmp_path, ""))
    assert settings.mqtt.url == "mqtt://127.0.0.1:1883"
    assert settings.database.url == "sqlite+aiosqlite:///./var/gateway.db"
    assert (settings.http.host, settings.http.port) == ("127.0.0.1", 8000)
    assert settings.twilio.enabled is False
    assert [s.format for s in settings.sources] == [
        "native",
        "zigbee2mqtt",
        "tasmota",
        "shelly",
        "wmbusmeters",
    ]


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = write(tmp_path, '[mqtt]\nurl = "mqtt://file:1883"\nclient_id = "from-file"\n')
    monkeypatch.setenv("GATEWAY_MQTT_URL", "mqtts://gw:p%40ss@broker.example:8884")
    monkeypatch.setenv("GATEWAY_DATABASE_URL", "postgresql+asyncpg://u@db/care")
    monkeypatch.setenv("GATEWAY_HTTP_PORT", "9000")
    monkeypatch.setenv("GATEWAY_ADMIN_TOKEN", "t" * 20)
    monkeypatch.setenv("GATEWAY_TWILIO_ACCOUNT_SID", "AC123")
    monkeypatch.setenv("GATEWAY_TWILIO_AUTH_TOKEN", "secret")
    monkeypatch.setenv("GATEWAY_TWILIO_FROM", "+15005550006")
    settings = load_settings(path)
    assert settings.mqtt.client_id == "from-file"
    endpoint = settings.mqtt.endpoint()
    assert (endpoint.host, endpoint.port, endpoint.tls) == ("broker.example", 8884, True)
    assert (endpoint.username, endpoint.password) == ("gw", "p@ss")
    assert "p%40ss" not in settings.mqtt.display_url()
    assert settings.database.url == "postgresql+asyncpg://u@db/care"
    assert settings.http.port == 9000
    assert settings.require_admin_token() == "t" * 20
    assert settings.twilio.enabled
    assert settings.twilio.from_number == "+15005550006"


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("GATEWAY_MQTT_URL", "http://broker", "mqtt.url (GATEWAY_MQTT_URL)"),
        ("GATEWAY_HTTP_PORT", "eighty", "http.port (GATEWAY_HTTP_PORT)"),
        ("GATEWAY_DATABASE_URL", "mysql://x", "database.url (GATEWAY_DATABASE_URL)"),
        ("GATEWAY_TIMEZONE", "Mars/Olympus", "timezone (GATEWAY_TIMEZONE)"),
    ],
)
def test_a_bad_value_is_one_line_naming_key_and_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, ""))
    assert str(caught.value).startswith(named)
    assert "\n" not in str(caught.value)


def test_unknown_keys_and_broken_toml_are_refused(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"mqtt\.colour"):
        load_settings(write(tmp_path, '[mqtt]\ncolour = "blue"\n'))
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "[mqtt\n"))
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "missing.toml")


def test_admin_token_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = write(tmp_path, "")
    with pytest.raises(ConfigError, match="GATEWAY_ADMIN_TOKEN"):
        load_settings(path).require_admin_token()
    monkeypatch.setenv("GATEWAY_ADMIN_TOKEN", "change-me")
    assert load_settings(path).require_admin_token() == "change-me"  # development
    monkeypatch.setenv("GATEWAY_ENVIRONMENT", "production")
    with pytest.raises(ConfigError, match="placeholder"):
        load_settings(path).require_admin_token()


def test_the_example_file_loads_and_documents_every_key():
    example = Path(__file__).resolve().parents[2] / "config" / "gateway.example.toml"
    settings = load_settings(example)
    text = example.read_text(encoding="utf-8")
    for name, field in type(settings).model_fields.items():
        section = getattr(settings, name)
        keys = [f"{field.alias or name} ="]
        if isinstance(section, BaseModel):
            keys = [f"{f.alias or k} =" for k, f in type(section).model_fields.items()]
        elif name == "sources":
            keys = ["[[sources]]", *(f"{k} =" for k in SourceSettings.model_fields)]
        for key in keys:
            assert key in text, f"{name}: {key} is not documented in {example.name}"
