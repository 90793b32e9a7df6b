"""Delivery channels behind one interface: `Notifier.send(OutboundMessage) -> Delivery`."""

from gateway.alerts.notifiers.base import (
    Channel,
    Delivery,
    Notifier,
    OutboundMessage,
    PermanentSendError,
    RetryableSendError,
    SendError,
)

__all__ = [
    "Channel",
    "Delivery",
    "Notifier",
    "OutboundMessage",
    "PermanentSendError",
    "RetryableSendError",
    "SendError",
]
