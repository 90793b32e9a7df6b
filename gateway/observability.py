"""Prometheus metrics, one registry per gateway instance (no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest


class GatewayMetrics:
    """The counters and gauges exposed at GET /metrics."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.messages = Counter("iot_gateway_messages", "MQTT messages received", registry=r)
        self.readings = Counter(
            "iot_gateway_readings", "Canonical readings stored", ["source"], registry=r
        )
        self.duplicates = Counter(
            "iot_gateway_duplicate_readings",
            "Readings already stored (redelivered messages), ignored",
            registry=r,
        )
        self.dead_letters = Counter(
            "iot_gateway_dead_letters",
            "Messages, or parts of messages, that could not be used",
            ["reason"],
            registry=r,
        )
        self.alerts_open = Gauge(
            "iot_gateway_alerts_open", "Alerts not yet resolved", ["severity"], registry=r
        )
        self.notifications = Counter(
            "iot_gateway_notifications",
            "Notifications by channel and outcome",
            ["channel", "status"],
            registry=r,
        )
        self.ingest_lag = Gauge(
            "iot_gateway_ingest_lag_seconds",
            "Seconds from a message's arrival to its readings being committed (last batch)",
            registry=r,
        )
        self.broker_connected = Gauge(
            "iot_gateway_broker_connected", "1 while connected to the broker", registry=r
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
