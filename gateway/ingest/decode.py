"""One message to readings: the source its topic matches, then its format's normaliser.

Pure: what cannot be used comes back as a `Refusal` (a dead letter's code and reason).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from gateway.devices import DeviceMessage, Rejected, normaliser_for
from gateway.ingest.mqtt import InboundMessage
from gateway.ingest.sources import SourceMatch, SourceTable
from gateway.models import ALERT_DEVICE_IDS, Reading

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Decoded:
    message: InboundMessage
    match: SourceMatch
    readings: list[Reading]
    state: list[Reading] = field(default_factory=list)
    """Retained states stamped with their arrival time: stored and judged, no sign of life."""

    @property
    def arrival_stamped(self) -> bool:
        """Whether a reading took the arrival time (the payload carries none of its own):
        only such a message could be stored twice when redelivered."""
        at = self.message.received_at
        return any(r.ts == at for r in self.readings)


@dataclass(frozen=True, slots=True)
class Refusal:
    code: str
    reason: str


def decode(message: InboundMessage, sources: SourceTable) -> tuple[Decoded | None, Refusal | None]:
    """The message's readings, and what in it was refused: a message may have both (usable
    readings beside unusable fields), or only a refusal."""
    match = sources.match(message.topic)
    if match is None:
        return None, Refusal("no_source", "topic matches no configured source")
    if not (_valid_id(match.household_id, 64) and _valid_id(match.device_id, 128)):
        reason = "household or device id in the topic is too long or has control characters"
        return None, Refusal("invalid_topic", reason)
    if match.device_id in ALERT_DEVICE_IDS:
        reason = f"device id {match.device_id!r} is reserved for alerts about several devices"
        return None, Refusal("invalid_topic", reason)
    try:
        normalised = normaliser_for(match.format)(
            DeviceMessage(
                household_id=match.household_id,
                device_id=match.device_id,
                subtopic=match.subtopic,
                payload=message.payload,
                received_at=message.received_at,
                zone=match.zone,
            )
        )
    except Rejected as exc:
        return None, Refusal(exc.code, exc.reason)
    except Exception as exc:  # a normaliser bug must not stop ingest
        log.exception("normaliser %s failed on %s", match.format, message.topic)
        return None, Refusal("normaliser_error", f"{type(exc).__name__}: {exc}")
    decoded = Decoded(message, match, normalised.readings)
    if normalised.problems:
        # The usable readings are kept; the unusable fields are kept as a dead letter.
        return decoded, Refusal("invalid_value", "; ".join(normalised.problems))
    return decoded, None


def _valid_id(value: str, longest: int) -> bool:
    return len(value) <= longest and value.isprintable()
