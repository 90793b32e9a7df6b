"""The one-method notifier interface every delivery channel implements."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class Channel(StrEnum):
    SMS = "sms"
    VOICE = "voice"


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A message to one person; `to_phone` is E.164 (+8613800000000)."""

    channel: Channel
    to_phone: str
    to_name: str
    body: str


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
