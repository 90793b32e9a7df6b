"""Settings: config/gateway.toml (or $GATEWAY_CONFIG), overridden by GATEWAY_* variables.

Sections of the TOML file map to nested settings, and every key has an environment name made
of the prefix, the section and the key: `[mqtt] url` is `GATEWAY_MQTT_URL`.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from gateway.alerts.messages import TemplateError, Texts
from gateway.alerts.policy import (
    CHECKIN_WAIT_MIN,
    CLOSED_LOOP_MIN,
    INACTIVITY_RULES,
    Step,
)
from gateway.models import Severity

DEFAULT_CONFIG_PATH = Path("config/gateway.toml")
PLACEHOLDER_SECRETS = frozenset({"change-me", "changeme", "secret", "admin", "token", ""})
MIN_TOKEN_LENGTH = 16


Exposure = Literal["public", "token", "off"]
"""Who may read an endpoint: anyone, holders of the bearer token, or nobody (404)."""


class ConfigError(Exception):
    """The configuration cannot be used; the message is one line naming the key."""


@dataclass(frozen=True, slots=True)
class BrokerEndpoint:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MqttSettings(_Section):
    url: str = "mqtt://127.0.0.1:1883"
    """mqtt://user:pass@host:port, or mqtts:// for TLS."""
    client_id: str = "iot-gateway"
    """Fixed, so the broker keeps this gateway's persistent session across restarts."""
    shared_group: str | None = None
    """When set, subscribe as $share/<group>/<topic> so several gateways share the load."""
    keepalive_s: int = Field(default=30, ge=5, le=600)
    ca_file: Path | None = None
    reconnect_min_s: float = Field(default=1.0, gt=0)
    reconnect_max_s: float = Field(default=60.0, gt=0)
    max_inflight: int = Field(default=1000, ge=1, le=65535)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ValueError("must start with mqtt:// or mqtts://")
        if not parts.hostname:
            raise ValueError("has no host")
        try:
            _ = parts.port
        except ValueError as exc:
            raise ValueError("has an invalid port") from exc
        return value

    def endpoint(self) -> BrokerEndpoint:
        parts = urlsplit(self.url)
        tls = parts.scheme == "mqtts"
        return BrokerEndpoint(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (8883 if tls else 1883),
            tls=tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )

    def display_url(self) -> str:
        """The URL without its password, for logs and the health endpoint."""
        ep = self.endpoint()
        user = f"{ep.username}@" if ep.username else ""
        host = f"[{ep.host}]" if ":" in ep.host else ep.host
        return f"{'mqtts' if ep.tls else 'mqtt'}://{user}{host}:{ep.port}"


class DatabaseSettings(_Section):
    url: str = "sqlite+aiosqlite:///./var/gateway.db"
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value


class HttpSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    """Largest request body the API reads; larger ones get 413 (routes may allow less)."""
    docs: Exposure | None = None
    """/docs, /redoc and /openapi.json; None: public in development, off in production."""
    metrics: Exposure | None = None
    """/metrics; None: public in development, behind the token in production."""


class TwilioSettings(_Section):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    account_sid: str | None = None
    auth_token: SecretStr | None = None
    from_number: str | None = Field(default=None, alias="from")
    api_base_url: str = "https://api.twilio.com"
    timeout_s: float = Field(default=10.0, gt=0)

    @property
    def enabled(self) -> bool:
        return bool(self.account_sid and self.auth_token and self.from_number)


class AliyunSettings(_Section):
    """Alibaba Cloud SMS (Dysmsapi SendSms): mainland numbers, one approved template."""

    access_key_id: str | None = None
    access_key_secret: SecretStr | None = None
    sign_name: str | None = None
    """The approved signature (签名), shown as 【...】 in front of every message."""
    template_code: str | None = None
    """The approved template (SMS_...) with the variables of docs/escalation.md."""
    endpoint: str = "dysmsapi.aliyuncs.com"
    """Host (and :port) of the API; a test server: "127.0.0.1:8991" with protocol "http"."""
    protocol: Literal["https", "http"] = "https"
    timeout_s: float = Field(default=10.0, gt=0)

    @property
    def enabled(self) -> bool:
        return bool(
            self.access_key_id and self.access_key_secret and self.sign_name and self.template_code
        )


class AlertSettings(_Section):
    language: Literal["zh", "en"] = "zh"
    send_attempts: int = Field(default=3, ge=1, le=10)
    """Attempts per message before the dispatcher records it as failed."""
    retry_backoff_s: float = Field(default=2.0, ge=0)
    """First retry delay; doubles on each attempt."""
    urgent_workers: int = Field(default=2, ge=1, le=32)
    """Workers that send only messages about critical alerts (smoke, a call, a fall), so a
    backlog of lower ones never delays them."""


class ControlRoomSettings(_Section):
    name: str = Field(default="值班室", min_length=1, max_length=100)
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9]{5,15}$")
    """The duty phone (SMS and calls at the control-room step); None: robots only."""
    language: Literal["zh", "en"] | None = None


class RobotSettings(_Section):
    """A WeCom (企业微信) or DingTalk group robot: a webhook URL the gateway posts markdown to."""

    name: str = Field(min_length=1, max_length=64)
    kind: Literal["wecom", "dingtalk"]
    url: SecretStr
    """The robot's webhook URL (it carries the robot's key: a secret)."""
    secret: SecretStr | None = None
    """DingTalk's signing secret ("加签"), when the robot has one."""
    villages: list[str] = Field(default_factory=list)
    """Village teams' robots get alerts of these villages only; empty: every alert (the
    control room's)."""


class EscalationSettings(_Section):
    """Who is contacted, how, and how long to wait (DESIGN.md §6); see docs/escalation.md."""

    policies: dict[Severity, list[Step]] = Field(default_factory=dict)
    """Steps per severity; a severity not given keeps the built-in steps."""
    checkin_rules: list[str] = Field(default_factory=lambda: list(INACTIVITY_RULES))
    """Rules whose escalation starts with a check-in call to the elder; [] turns it off."""
    checkin_wait_min: float = Field(default=CHECKIN_WAIT_MIN, gt=0, le=60)
    closed_loop_min: float | None = Field(default=CLOSED_LOOP_MIN, gt=0)
    """After a critical alert is acknowledged: escalate again when nobody confirms arrival or
    resolves within this many minutes; None: acknowledgement ends it."""
    batch_window_s: float = Field(default=60.0, ge=0, le=3600)
    """Further messages to one person about one household within this time after a message
    go out together, as one, when it ends."""
    check_interval_s: float = Field(default=5.0, gt=0, le=300)
    """How often due steps are looked for (a reply or failed delivery wakes it at once)."""
    control_room: ControlRoomSettings = ControlRoomSettings()
    robots: list[RobotSettings] = Field(default_factory=list)
    sms_provider: Literal["twilio", "aliyun", "console"] | None = None
    """Who carries SMS; None: Twilio when configured, else the console."""
    templates: dict[Literal["zh", "en"], dict[str, str]] = Field(default_factory=dict)
    """Message templates overriding the built-in ones, by language and name (docs)."""


class CareSettings(_Section):
    """Visit reminders to visitors (docs/coverage.md); times are in the gateway's zone."""

    reminders: bool = True
    """Send visit reminders at all."""
    monthly_days: list[Annotated[int, Field(ge=1, le=28)]] = Field(
        default_factory=lambda: [20, 25], max_length=28
    )
    """Days of the month each visitor gets the list of their elders not yet visited this month
    (1-28, so every month has them); [] turns the monthly reminder off."""
    send_at: time = time(9, 0)
    """Reminders go out from this time of day (the job runs hourly at this minute)..."""
    quiet_from: time = time(21, 0)
    """...until this one: none at night (a change late in the evening waits for the morning)."""
    high_risk_every_days: int = Field(default=7, ge=0, le=31)
    """An elder of high risk not visited in this many days: a reminder (checked daily, at most
    one per elder and visitor in that many days); 0: off."""
    changed_within_hours: int = Field(default=24, ge=0, le=168)
    """An elder whose situation changed (situation_changed_at) and not visited since: a
    reminder at once, asking for a visit within this many hours; 0: off."""

    @model_validator(mode="after")
    def _check_times(self) -> CareSettings:
        if self.quiet_from <= self.send_at:
            raise ValueError("quiet_from must be later in the day than send_at")
        if len(set(self.monthly_days)) != len(self.monthly_days):
            raise ValueError("monthly_days has a day twice")
        return self


class IngestSettings(_Section):
    """Limits that keep one household's hub, gone wrong or hostile, from burying the rest."""

    max_new_devices_per_household: int = Field(default=40, ge=1, le=10_000)
    """Devices a household may register just by sending; a further new device's messages are
    dead letters (device_limit) until an installer registers it, though its alarms pass."""
    household_rate_per_s: float = Field(default=10.0, gt=0, le=10_000)
    """Messages a second a household may send on average; over it, its ordinary messages are
    shed (alarms pass)."""
    household_burst: int = Field(default=1200, ge=1, le=1_000_000)
    """...with bursts of this many (a hub reconnecting, a gateway's backlog after a restart)."""
    buffer_size: int = Field(default=20_000, ge=100, le=60_000)
    """Ordinary messages received and not yet stored that the gateway holds; past it, the
    broker keeps the rest. The broker's window of unacknowledged messages (mosquitto's
    max_inflight_messages) must be no larger, or alarms behind a full buffer wait too."""
    alarm_lane_per_s: float = Field(default=0.2, gt=0, le=1_000)
    """Possible alarms a second a household may have handled ahead of ordinary readings, on
    average; past it, its alarms are stored and alerted in turn, behind the backlog."""
    alarm_lane_burst: int = Field(default=20, ge=1, le=10_000)
    """...with bursts of this many."""


class SourceSettings(_Section):
    name: str
    format: str
    topics: list[str] = Field(min_length=1)
    """Topic templates with {household} and {device} placeholders; the rest is matched literally
    and '#' at the end matches any remaining levels."""
    timezone: str | None = None
    """Zone of timestamps the payload gives without an offset; None: use arrival time."""


def default_sources() -> list[SourceSettings]:
    """The sources of DESIGN.md §4: one home hub per household bridged to the central broker."""
    return [
        SourceSettings(
            name="native",
            format="native",
            topics=[
                "homes/{household}/{device}/telemetry",
                "homes/{household}/{device}/event",
                "homes/{household}/{device}/status",
            ],
        ),
        SourceSettings(
            name="zigbee2mqtt",
            format="zigbee2mqtt",
            topics=[
                "homes/{household}/z2m/{device}",
                "homes/{household}/z2m/{device}/availability",
            ],
        ),
        SourceSettings(
            name="tasmota",
            format="tasmota",
            topics=["homes/{household}/tasmota/tele/{device}/#"],
        ),
        SourceSettings(
            name="shelly",
            format="shelly",
            topics=["homes/{household}/shelly/{device}/#"],
        ),
        SourceSettings(
            name="wmbusmeters",
            format="wmbusmeters",
            topics=["homes/{household}/wmbus/{device}"],
        ),
    ]


class Settings(BaseSettings):
    """Everything the gateway reads at start-up."""

    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="forbid",
        frozen=True,
    )

    environment: Literal["development", "production"] = "development"
    admin_token: SecretStr | None = None
    """Bearer token with the admin role; required by `iot-gateway run`."""
    timezone: str = "Asia/Shanghai"
    """Households' default zone, for messages and for reasoning about days and nights."""
    rules_file: Path | None = None
    """Rule defaults; None: the built-in ones (gateway/defaults/rules.toml, which
    config/rules.toml in the repository links to)."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    public_url: str | None = Field(default=None, pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
    """The base URL Twilio (and people following a link) reach this gateway at, e.g.
    https://care.example.org; webhooks are checked against it. None: no calls back, so no
    check-in calls, replies or delivery reports."""
    mqtt: MqttSettings = MqttSettings()
    database: DatabaseSettings = DatabaseSettings()
    http: HttpSettings = HttpSettings()
    twilio: TwilioSettings = TwilioSettings()
    aliyun: AliyunSettings = AliyunSettings()
    alerts: AlertSettings = AlertSettings()
    ingest: IngestSettings = IngestSettings()
    escalation: EscalationSettings = EscalationSettings()
    care: CareSettings = CareSettings()
    sources: list[SourceSettings] = Field(default_factory=default_sources)

    @field_validator("timezone")
    @classmethod
    def _check_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment wins over the TOML file, which arrives as init arguments.
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _check_escalation(self) -> Settings:
        provider = self.escalation.sms_provider
        if provider == "aliyun" and not self.aliyun.enabled:
            raise ValueError(
                "escalation.sms_provider is aliyun but [aliyun] access_key_id, "
                "access_key_secret, sign_name and template_code are not all set"
            )
        if provider == "twilio" and not self.twilio.enabled:
            raise ValueError("escalation.sms_provider is twilio but [twilio] is not configured")
        try:
            Texts(self.escalation.templates)
        except TemplateError as exc:
            raise ValueError(f"escalation.templates: {exc}") from None
        return self

    def docs_exposure(self) -> Exposure:
        """The API documentation: as configured, else public only in development."""
        return self.http.docs or ("off" if self.environment == "production" else "public")

    def metrics_exposure(self) -> Exposure:
        """/metrics: as configured, else public only in development (a Prometheus scrape job
        can send the bearer token)."""
        return self.http.metrics or ("token" if self.environment == "production" else "public")

    def require_admin_token(self) -> str:
        """The admin token, refused when missing, short or a placeholder (in every environment:
        a development gateway listening on a network is as reachable as a production one)."""
        token = self.admin_token.get_secret_value() if self.admin_token else ""
        if not token:
            raise ConfigError("admin_token (GATEWAY_ADMIN_TOKEN): required to serve the API")
        if _is_placeholder(token) or len(token) < MIN_TOKEN_LENGTH:
            raise ConfigError(
                "admin_token (GATEWAY_ADMIN_TOKEN): a placeholder or short token is refused; "
                f"use at least {MIN_TOKEN_LENGTH} random characters"
            )
        return token


def _is_placeholder(secret: str) -> bool:
    lowered = secret.lower()
    return lowered in PLACEHOLDER_SECRETS or "changeme" in lowered.replace("-", "").replace("_", "")


def _env_name(loc: tuple[int | str, ...]) -> str:
    names = [str(part) for part in loc if not isinstance(part, int)]
    if names[:2] == ["twilio", "from"]:
        names[1] = "from"
    return "GATEWAY_" + "_".join(names).upper()


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    loc = first["loc"]
    key = ".".join(str(part) for part in loc) or "settings"
    return f"{key} ({_env_name(loc)}): {first['msg']}"


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Read the TOML file (if any), apply GATEWAY_* variables and `overrides`; fail in one line."""
    path = config_file or Path(os.environ.get("GATEWAY_CONFIG", DEFAULT_CONFIG_PATH))
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    elif config_file is not None:
        raise ConfigError(f"{path}: config file not found")
    data.update(overrides)
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
