from __future__ import annotations

import os
import re
from datetime import time
from pathlib import Path

import pytest
from pydantic import BaseModel

from gateway.config import BrokerEndpoint, ConfigError, MqttSettings, SourceSettings, load_settings


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


def test_ci_test_variables_do_not_leak_into_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("GATEWAY_TEST_MQTT_URL", "mqtt://ci-broker:1883")
    monkeypatch.setenv("GATEWAY_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@ci/test")
    monkeypatch.setenv("GATEWAY_TEST_REQUIRE_SERVICES", "1")
    settings = load_settings(write(tmp_path, ""))
    assert settings.mqtt.url == "mqtt://127.0.0.1:1883"
    assert settings.database.url == "sqlite+aiosqlite:///./var/gateway.db"


def test_toml_sections_become_nested_settings(tmp_path: Path):
    path = write(
        tmp_path,
        """
environment = "production"
timezone = "Asia/Urumqi"
log_level = "DEBUG"

[mqtt]
url = "mqtts://broker.example"
shared_group = "gateways"
keepalive_s = 60

[database]
url = "postgresql+asyncpg://care@db/care"

[http]
host = "0.0.0.0"
port = 8080

[twilio]
account_sid = "AC1"
auth_token = "tok"
from = "+15005550006"

[alerts]
language = "en"
send_attempts = 5

[[sources]]
name = "lab"
format = "native"
topics = ["lab/{household}/{device}/telemetry"]
timezone = "Asia/Shanghai"
""",
    )
    settings = load_settings(path)
    assert (settings.environment, settings.timezone, settings.log_level) == (
        "production",
        "Asia/Urumqi",
        "DEBUG",
    )
    assert settings.mqtt.url == "mqtts://broker.example"
    assert (settings.mqtt.shared_group, settings.mqtt.keepalive_s) == ("gateways", 60)
    assert settings.database.url == "postgresql+asyncpg://care@db/care"
    assert (settings.http.host, settings.http.port) == ("0.0.0.0", 8080)
    assert settings.twilio.from_number == "+15005550006"
    assert settings.twilio.enabled
    assert (settings.alerts.language, settings.alerts.send_attempts) == ("en", 5)
    (source,) = settings.sources
    assert (source.name, source.topics, source.timezone) == (
        "lab",
        ["lab/{household}/{device}/telemetry"],
        "Asia/Shanghai",
    )


@pytest.mark.parametrize(
    ("variable", "toml", "value", "read"),
    [
        (
            "GATEWAY_MQTT_URL",
            '[mqtt]\nurl = "mqtt://file:1883"\n',
            "mqtt://env:1884",
            lambda s: s.mqtt.url,
        ),
        (
            "GATEWAY_DATABASE_URL",
            '[database]\nurl = "sqlite+aiosqlite:///file.db"\n',
            "postgresql+asyncpg://u@env/care",
            lambda s: s.database.url,
        ),
        ("GATEWAY_HTTP_PORT", "[http]\nport = 8001\n", "9000", lambda s: s.http.port),
        (
            "GATEWAY_TWILIO_FROM",
            '[twilio]\nfrom = "+1000"\n',
            "+15005550006",
            lambda s: s.twilio.from_number,
        ),
        (
            "GATEWAY_TWILIO_ACCOUNT_SID",
            '[twilio]\naccount_sid = "ACfile"\n',
            "ACenv",
            lambda s: s.twilio.account_sid,
        ),
        (
            "GATEWAY_ADMIN_TOKEN",
            'admin_token = "file-token-file-token"\n',
            "env-token-env-token",
            lambda s: s.require_admin_token(),
        ),
    ],
)
def test_each_variable_overrides_its_key_in_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable, toml, value, read
):
    path = write(tmp_path, toml)
    before = read(load_settings(path))
    monkeypatch.setenv(variable, value)
    after = read(load_settings(path))
    assert str(before) != value
    assert str(after) == value


def test_a_variable_overrides_one_key_and_keeps_the_rest_of_the_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    path = write(tmp_path, '[twilio]\naccount_sid = "ACfile"\nauth_token = "tok"\nfrom = "+1"\n')
    monkeypatch.setenv("GATEWAY_TWILIO_FROM", "+2")
    twilio = load_settings(path).twilio
    assert (twilio.account_sid, twilio.from_number) == ("ACfile", "+2")
    assert twilio.auth_token is not None
    assert twilio.auth_token.get_secret_value() == "tok"


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ('[mqtt]\nurl = "http://broker"\n', "mqtt.url (GATEWAY_MQTT_URL)"),
        ('[http]\nport = "eighty"\n', "http.port (GATEWAY_HTTP_PORT)"),
        ("[http]\nport = 70000\n", "http.port (GATEWAY_HTTP_PORT)"),
        ('[alerts]\nlanguage = "fr"\n', "alerts.language (GATEWAY_ALERTS_LANGUAGE)"),
        ('environment = "prod"\n', "environment (GATEWAY_ENVIRONMENT)"),
        ("colour = 1\n", "colour"),
        ('[twilio]\ncolour = "blue"\n', "twilio.colour"),
    ],
)
def test_a_bad_value_in_the_file_names_its_key(tmp_path: Path, toml: str, named: str):
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, toml))
    assert str(caught.value).startswith(named)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "url", ["mqtt://", "tcp://broker:1883", "mqtt://broker:99999", "broker:1883", ""]
)
def test_a_broker_url_that_cannot_be_used_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str
):
    monkeypatch.setenv("GATEWAY_MQTT_URL", url)
    with pytest.raises(ConfigError, match=r"^mqtt\.url \(GATEWAY_MQTT_URL\)"):
        load_settings(write(tmp_path, ""))


def test_broker_credentials_are_url_decoded():
    endpoint = MqttSettings(url="mqtt://user:pa%40ss@host:1884").endpoint()
    assert endpoint == BrokerEndpoint("host", 1884, False, "user", "pa@ss")


@pytest.mark.parametrize(
    ("url", "port", "tls"),
    [
        ("mqtt://host", 1883, False),
        ("mqtts://host", 8883, True),
        ("mqtts://host:8884", 8884, True),
    ],
)
def test_the_default_port_follows_the_scheme(url: str, port: int, tls: bool):
    endpoint = MqttSettings(url=url).endpoint()
    assert (endpoint.host, endpoint.port, endpoint.tls) == ("host", port, tls)
    assert (endpoint.username, endpoint.password) == (None, None)


def test_the_displayed_url_hides_the_password():
    shown = MqttSettings(url="mqtts://gateway:s3cr%40t@broker.example").display_url()
    assert shown == "mqtts://gateway@broker.example:8883"
    assert "s3cr" not in shown


def test_a_missing_admin_token_is_refused_even_in_development(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"^admin_token \(GATEWAY_ADMIN_TOKEN\)"):
        load_settings(write(tmp_path, "")).require_admin_token()


@pytest.mark.parametrize(
    "token", ["change-me", "CHANGEME", "secret", "admin", "a" * 15, "please-change-me-in-prod"]
)
@pytest.mark.parametrize("environment", ["development", "production"])
def test_placeholder_or_short_admin_tokens_are_refused_in_every_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, token: str, environment: str
):
    monkeypatch.setenv("GATEWAY_ENVIRONMENT", environment)
    monkeypatch.setenv("GATEWAY_ADMIN_TOKEN", token)
    with pytest.raises(
        ConfigError, match=r"^admin_token \(GATEWAY_ADMIN_TOKEN\): a placeholder or short token"
    ):
        load_settings(write(tmp_path, "")).require_admin_token()


def test_a_long_random_admin_token_is_accepted_in_production(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("GATEWAY_ENVIRONMENT", "production")
    monkeypatch.setenv("GATEWAY_ADMIN_TOKEN", "q8Vd1xL0sZr4KpWm")
    assert load_settings(write(tmp_path, "")).require_admin_token() == "q8Vd1xL0sZr4KpWm"


def test_the_admin_token_is_not_shown_when_settings_are_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("GATEWAY_ADMIN_TOKEN", "q8Vd1xL0sZr4KpWm")
    assert "q8Vd1xL0sZr4KpWm" not in repr(load_settings(write(tmp_path, "")))


def test_the_config_file_can_be_named_by_gateway_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("GATEWAY_CONFIG", str(write(tmp_path, "[http]\nport = 8123\n")))
    assert load_settings().http.port == 8123


def test_without_a_config_file_the_defaults_apply(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)  # no config/gateway.toml here
    assert load_settings().http.port == 8000


def test_overrides_win_over_the_file(tmp_path: Path):
    path = write(tmp_path, 'log_level = "DEBUG"\n')
    assert load_settings(path, log_level="ERROR").log_level == "ERROR"


@pytest.mark.parametrize(
    ("environment", "docs", "metrics"),
    [("development", "public", "public"), ("production", "off", "token")],
)
def test_docs_and_metrics_follow_the_environment_unless_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, environment: str, docs: str, metrics: str
):
    monkeypatch.setenv("GATEWAY_ENVIRONMENT", environment)
    settings = load_settings(write(tmp_path, ""))
    assert (settings.docs_exposure(), settings.metrics_exposure()) == (docs, metrics)
    monkeypatch.setenv("GATEWAY_HTTP_DOCS", "token")
    monkeypatch.setenv("GATEWAY_HTTP_METRICS", "off")
    settings = load_settings(write(tmp_path, ""))
    assert (settings.docs_exposure(), settings.metrics_exposure()) == ("token", "off")


def test_http_limits_and_exposure_are_checked(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"^http\.docs \(GATEWAY_HTTP_DOCS\)"):
        load_settings(write(tmp_path, '[http]\ndocs = "everyone"\n'))
    with pytest.raises(ConfigError, match=r"^http\.max_body_bytes \(GATEWAY_HTTP_MAX_BODY_BYTES\)"):
        load_settings(write(tmp_path, "[http]\nmax_body_bytes = 10\n"))
    settings = load_settings(write(tmp_path, "[http]\nmax_body_bytes = 65536\n"))
    assert settings.http.max_body_bytes == 65536


@pytest.mark.parametrize(
    ("escalation", "named"),
    [
        ({"sms_provider": "aliyun"}, "sms_provider is aliyun"),
        ({"templates": {"zh": {"alert": "{nope}"}}}, "unknown placeholder {nope}"),
        ({"templates": {"en": {"bogus": "x"}}}, "unknown template 'bogus'"),
        ({"policies": {"high": [{"to": ["neighbours"], "channels": ["sms"], "wait_min": 1}]}},
         "escalation.policies.high.0.to.0"),
    ],
)  # fmt: skip
def test_an_unusable_escalation_setting_is_refused_in_one_line(
    tmp_path: Path, escalation: dict[str, object], named: str
):
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, ""), escalation=escalation)
    assert named in str(caught.value)
    assert "\n" not in str(caught.value)


def test_care_reminder_times_and_tiers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    settings = load_settings(write(tmp_path, ""))
    assert (settings.care.monthly_days, settings.care.send_at) == ([20, 25], time(9, 0))
    path = write(
        tmp_path,
        '[care]\nmonthly_days = [28]\nsend_at = "08:30"\nhigh_risk_every_days = 0\n',
    )
    monkeypatch.setenv("GATEWAY_CARE_CHANGED_WITHIN_HOURS", "12")
    care = load_settings(path).care
    assert (care.monthly_days, care.send_at, care.high_risk_every_days) == ([28], time(8, 30), 0)
    assert care.changed_within_hours == 12
    for bad, named in [
        ("monthly_days = [31]", "care.monthly_days.0"),
        ('send_at = "22:00"', "care (GATEWAY_CARE)"),
        ("monthly_days = [20, 20]", "care (GATEWAY_CARE)"),
    ]:
        with pytest.raises(ConfigError, match=rf"^{re.escape(named)}"):
            load_settings(write(tmp_path, f"[care]\n{bad}\n"))
