"""Simulated elders' homes: routines, incidents with ground truth, recordings, live and load."""

from simulators.broker import BrokerUnavailable
from simulators.incidents import SCENARIOS
from simulators.live import LivePublisher, LiveSummary
from simulators.load import LoadSummary, load_messages, run_load
from simulators.model import (
    ALARM_TYPES,
    INCIDENT_TYPES,
    NORMAL_DAY_TYPES,
    AwayPeriod,
    Device,
    Format,
    Incident,
    Message,
    Role,
)
from simulators.neighbourhood import Neighbourhood
from simulators.recording import read_labels, read_recording, write_labels, write_recording

__all__ = [
    "ALARM_TYPES",
    "INCIDENT_TYPES",
    "NORMAL_DAY_TYPES",
    "SCENARIOS",
    "AwayPeriod",
    "BrokerUnavailable",
    "Device",
    "Format",
    "Incident",
    "LivePublisher",
    "LiveSummary",
    "LoadSummary",
    "Message",
    "Neighbourhood",
    "Role",
    "load_messages",
    "read_labels",
    "read_recording",
    "run_load",
    "write_labels",
    "write_recording",
]
