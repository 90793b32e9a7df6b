"""Prints messages instead of sending them: the default, and what the demo shows."""

from __future__ import annotations

import sys
from typing import TextIO

from gateway.alerts.notifiers.base import Delivery, OutboundMessage
from gateway.privacy import mask_phone


class ConsoleNotifier:
    name = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    async def send(self, message: OutboundMessage) -> Delivery:
        stream = self.stream or sys.stdout
        print(
            f"[{message.channel.value.upper()} → {message.to_name} "
            f"{mask_phone(message.to_phone)}] {message.body}",
            file=stream,
            flush=True,
        )
        return Delivery(provider=self.name, provider_id=None, status="printed")
