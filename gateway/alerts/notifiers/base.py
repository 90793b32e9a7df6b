"""The one-method notifier interface every delivery channel implements."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class Channel(StrEnum):
    SMS = "sms"
    VOICE = "voice"
    ROBOT = "robot"
    """A group robot (WeCom / DingTalk webhook) of the control room or a village team."""


class Purpose(StrEnum):
    """Why a message is sent; voice calls ask for a different keypress for each."""

    ALERT = "alert"
    """Tells a person about an alert; a call asks them to press 1 to acknowledge."""
    CHECKIN = "checkin"
    """Asks the elder to press 1 if they are well."""
    REMINDER = "reminder"
    """Reminds a visitor of the elders they have not visited yet (no alert)."""
    WARNING = "warning"
    """Passes an emergency warning (typhoon, flood...) to the visitors of an area (no alert)."""


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A message to one person or group.

    `to_phone` is E.164 (+8613800000000) for SMS and voice, the robot's configured name for
    ROBOT. A voice call reads `body`, then `prompt` (if any) while it waits for one key.
    """

    channel: Channel
    to_phone: str
    to_name: str
    body: str
    notification_id: int | None = None
    """The row this message is (webhooks name it, so a callback finds its notification)."""
    purpose: Purpose = Purpose.ALERT
    prompt: str | None = None
    """Spoken after `body` on a call, while one key is gathered (press 1 ...)."""
    title: str | None = None
    """A heading, for channels that show one (group robots' markdown)."""
    link: str | None = None
    """Where the alert can be acknowledged (group robots)."""
    language: str = "zh"
    fields: Mapping[str, str] = field(default_factory=dict)
    """The message's parts (elder, address, event, time, action, ack), for providers that send
    approved templates with variables instead of free text (Alibaba Cloud, Tencent Cloud)."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """What the provider said when it accepted a message."""

    provider: str
    provider_id: str | None
    status: str


class SendError(Exception):
    """A send failed; `retryable` tells the dispatcher whether trying again may help."""

    retryable: bool = True


class RetryableSendError(SendError):
    """Transient: network error, timeout, provider 5xx or 429."""

    retryable = True


class PermanentSendError(SendError):
    """Will not succeed on retry: bad number, rejected credentials, provider 4xx."""

    retryable = False


class Notifier(Protocol):
    """Delivers one message on one channel."""

    name: str

    async def send(self, message: OutboundMessage) -> Delivery: ...
