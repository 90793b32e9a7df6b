"""The typed state the API is given by the composition root (no globals)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.alerts.book import AlertBook
from gateway.alerts.links import AckLinks
from gateway.alerts.policy import Step
from gateway.alerts.responses import Responses
from gateway.care.directory import HouseholdDirectory
from gateway.clock import Clock
from gateway.live.feed import LiveFeed
from gateway.models import Severity
from gateway.observability import GatewayMetrics
from gateway.rules.catalogue import RulesConfig
from gateway.rules.routine import RoutineSummary
from gateway.store.readings import DeviceRecord


@dataclass(frozen=True, slots=True)
class BrokerStatus:
    connected: bool
    url: str


@dataclass(frozen=True, slots=True)
class ApiContext:
    db: AsyncEngine
    book: AlertBook
    directory: HouseholdDirectory
    metrics: GatewayMetrics
    clock: Clock
    admin_token: str
    broker_status: Callable[[], BrokerStatus]
    device_installed: Callable[[DeviceRecord], None]
    """Tells ingest and rules that a device was registered or confirmed through the API."""
    household_changed: Callable[[str], Awaitable[None]]
    """Tells the rules to reload a household's zone, rule overrides and away periods."""
    routine_summary: Callable[[str], Awaitable[RoutineSummary]]
    """What the rules know of a household's activity and learned routine now."""
    rules_defaults: RulesConfig
    """rules.toml as loaded: what a household's rule overrides are applied to."""
    zone: ZoneInfo
    """The gateway's zone (Settings.timezone): where reports' days and months begin."""
    escalation_defaults: dict[Severity, list[Step]] = field(default_factory=dict)
    """The settings' escalation steps per severity (those not given: the built-in ones)."""
    ack_links: AckLinks | None = None
    """Checks the acknowledge links group robots carry; None: links are off."""
    responses: Responses | None = None
    """Acts on SMS replies, keypresses and delivery reports (the Twilio webhooks)."""
    twilio_auth_token: str | None = None
    """Checks the webhooks' signatures; None: the webhooks are off."""
    public_url: str | None = None
    """The base URL Twilio calls the gateway at."""
    send_now: Callable[[Iterable[int]], None] = lambda ids: None
    """Hands committed notifications (`gateway.alerts.outbox.queue_message`) to the dispatcher
    at once; without it they go at its next sweep."""
    live: LiveFeed | None = None
    """The live feed's subscribers (GET /api/live); None: the feed is off (closed with 1012)."""
