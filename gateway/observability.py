"""Prometheus metrics, one registry per gateway instance (no global state)."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from gateway.ingest.lanes import Lane

if TYPE_CHECKING:
    from gateway.clock import Clock
    from gateway.ingest.lanes import Lanes


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
        self.redeliveries = Counter(
            "iot_gateway_redelivered_messages",
            "Messages the broker sent again (DUP) that were already stored, ignored",
            registry=r,
        )
        self.shed = Counter(
            "iot_gateway_shed_messages",
            "Ordinary messages dropped because their household sent too fast (alarms pass)",
            registry=r,
        )
        self.dead_letters = Counter(
            "iot_gateway_dead_letters",
            "Messages, or parts of messages, that could not be used",
            ["reason"],
            registry=r,
        )
        self.retained_readings = Counter(
            "iot_gateway_retained_readings",
            "Readings of retained messages: unchanged state (ignored), new state, an event "
            "replayed (dead letter), or a reading with its own time",
            ["outcome"],
            registry=r,
        )
        self.alerts_open = Gauge(
            "iot_gateway_alerts_open", "Alerts not yet resolved", ["severity"], registry=r
        )
        self.alerts_flagged = Gauge(
            "iot_gateway_alerts_flagged",
            "Alerts not yet resolved that need the control room: they reached it "
            "(control_room), every message failed (undeliverable) or nobody is on file "
            "(no_recipient)",
            ["reason"],
            registry=r,
        )
        self.alerts_flagged_total = Counter(
            "iot_gateway_alert_flags",
            "Alerts flagged for the control room, by reason",
            ["reason"],
            registry=r,
        )
        self.escalation_steps = Counter(
            "iot_gateway_escalation_steps",
            "Escalation steps run: notifying (first), escalated (later or repeated), checkin_call",
            ["kind"],
            registry=r,
        )
        self.webhooks = Counter(
            "iot_gateway_webhooks",
            "Provider webhooks received, by kind and outcome (forged ones are refused)",
            ["kind", "outcome"],
            registry=r,
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
        self.ingest_buffered = Gauge(
            "iot_gateway_ingest_buffered_messages",
            "Messages received and waiting to be stored, by lane: alarm (possible alarms, "
            "taken first) and ordinary (bounded by [ingest] buffer_size)",
            ["lane"],
            registry=r,
        )
        self.ingest_oldest = Gauge(
            "iot_gateway_ingest_buffer_oldest_age_seconds",
            "Seconds the oldest ordinary message waiting to be stored has waited (0: none)",
            registry=r,
        )
        self.ingest_batches = Counter(
            "iot_gateway_ingest_batches",
            "Batches of messages stored, by lane (alarm batches go ahead of ordinary ones)",
            ["lane"],
            registry=r,
        )
        self.alarm_lane = Counter(
            "iot_gateway_alarm_lane_messages",
            "Possible alarms taken ahead of ordinary messages (prioritised), or left in turn "
            "because their household spent its alarm-lane budget (over_budget)",
            ["outcome"],
            registry=r,
        )
        self._alarm_lane_counted: dict[str, int] = {}
        self.broker_connected = Gauge(
            "iot_gateway_broker_connected", "1 while connected to the broker", registry=r
        )
        self.rule_tick = Histogram(
            "iot_gateway_rule_tick_seconds",
            "Time to run the time-driven rules over every household once",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.partitions_held = Gauge(
            "iot_gateway_detector_partitions",
            "Household partitions this process's detector owns (of 64; all when it runs alone)",
            registry=r,
        )
        self.detector_gaps = Gauge(
            "iot_gateway_detector_reading_gaps",
            "Reading ids the detector skipped over and still waits to see committed",
            registry=r,
        )
        self.rule_state_saved = Counter(
            "iot_gateway_rule_state_saved",
            "Households whose rule state (activity log) was saved",
            registry=r,
        )
        self.live_clients = Gauge(
            "iot_gateway_live_clients", "Live feed connections (WebSockets) open", registry=r
        )
        self.live_events = Counter(
            "iot_gateway_live_events",
            "Changes published to the live feed by this process: alert changes, households, "
            "warnings, and resyncs",
            ["kind"],
            registry=r,
        )

        self.job_start_delay = Histogram(
            "iot_gateway_job_start_delay_seconds",
            "How late runs of a periodic job (rules tick, rule-state save) started",
            ["job"],
            buckets=(0.1, 1, 5, 30, 60, 300),
            registry=r,
        )
        self.job_skipped = Counter(
            "iot_gateway_job_runs_skipped",
            "Runs of a periodic job skipped (the previous run still running, or missed)",
            ["job"],
            registry=r,
        )
        self.job_failures = Counter(
            "iot_gateway_job_failures",
            "Runs of a periodic job that raised an error",
            ["job"],
            registry=r,
        )

    def watch_buffer(self, lanes: Lanes, clock: Clock) -> None:
        """Read ingest's lanes at each scrape (they change thousands of times a second)."""
        for lane in Lane:
            self.ingest_buffered.labels(lane).set_function(partial(lanes.depth, lane))

        def oldest_age() -> float:
            oldest = lanes.oldest()
            return 0.0 if oldest is None else (clock.now() - oldest).total_seconds()

        self.ingest_oldest.set_function(oldest_age)

    def count_batch(self, lane: Lane, lanes: Lanes) -> None:
        """A batch stored: count it, and bring the alarm lane's counters (kept by the network
        thread, which must not wait for a metrics lock) up to date."""
        self.ingest_batches.labels(lane).inc()
        for outcome, now in (
            ("prioritised", lanes.prioritised),
            ("over_budget", lanes.over_budget),
        ):
            counter = self.alarm_lane.labels(outcome)
            counter.inc(now - self._alarm_lane_counted.get(outcome, 0))
            self._alarm_lane_counted[outcome] = now

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
