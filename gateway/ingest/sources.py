"""Sources: topic templates that say which household and device a message is from, and its format.

A template is a topic with `{household}` and `{device}` levels; other levels match literally and
a final `#` matches whatever follows. Sources are tried in order; the first match wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from gateway.config import SourceSettings

# Bridge prefixes of the vendor formats; a native device may not use these ids.
RESERVED_DEVICE_IDS = frozenset({"z2m", "tasmota", "shelly", "wmbus"})


@dataclass(frozen=True, slots=True)
class SourceMatch:
    source: str
    format: str
    household_id: str
    device_id: str
    subtopic: str
    zone: ZoneInfo | None


@dataclass(frozen=True, slots=True)
class TopicTemplate:
    source: str
    format: str
    levels: tuple[str, ...]
    zone: ZoneInfo | None
    # Worked out once from `levels` (matching runs for every message):
    literals: tuple[tuple[int, str], ...] = ()
    """The literal levels, by position."""
    household_at: int = 0
    device_at: int = 0
    width: int = 0
    """How many levels a topic has (at least this many, when the template ends in '#')."""
    open_ended: bool = False

    @classmethod
    def parse(
        cls, source: str, format_name: str, template: str, zone: ZoneInfo | None
    ) -> TopicTemplate:
        levels = tuple(template.split("/"))
        if levels.count("{household}") != 1 or levels.count("{device}") != 1:
            raise ValueError(
                f"topic template {template!r} needs one {{household}} and one {{device}}"
            )
        if any("+" in level or ("#" in level and level != "#") for level in levels) or (
            "#" in levels[:-1]
        ):
            raise ValueError(f"topic template {template!r}: '#' only as the last level, no '+'")
        unknown = [lv for lv in levels if "{" in lv and lv not in ("{household}", "{device}")]
        if unknown:
            raise ValueError(f"topic template {template!r}: unknown placeholder {unknown[0]}")
        open_ended = levels[-1] == "#"
        fixed = levels[:-1] if open_ended else levels
        return cls(
            source,
            format_name,
            levels,
            zone,
            literals=tuple((i, lv) for i, lv in enumerate(fixed) if not lv.startswith("{")),
            household_at=levels.index("{household}"),
            device_at=levels.index("{device}"),
            width=len(fixed),
            open_ended=open_ended,
        )

    @property
    def subscription(self) -> str:
        """The MQTT filter for this template."""
        return "/".join("+" if level.startswith("{") else level for level in self.levels)

    def match(self, topic: str) -> SourceMatch | None:
        parts = topic.split("/")
        if len(parts) != self.width and not (self.open_ended and len(parts) > self.width):
            return None
        for at, level in self.literals:
            if parts[at] != level:
                return None
        household, device = parts[self.household_at], parts[self.device_at]
        if not household or not device:
            return None
        if self.format == "native" and device in RESERVED_DEVICE_IDS:
            return None
        subtopic = "/".join(parts[self.device_at + 1 :])
        return SourceMatch(self.source, self.format, household, device, subtopic, self.zone)


class SourceTable:
    """All configured sources, matched in order."""

    def __init__(self, sources: Sequence[SourceSettings]) -> None:
        self.templates = [
            TopicTemplate.parse(
                s.name, s.format, template, ZoneInfo(s.timezone) if s.timezone else None
            )
            for s in sources
            for template in s.topics
        ]

    def subscriptions(self, shared_group: str | None = None) -> list[str]:
        filters = list(dict.fromkeys(t.subscription for t in self.templates))
        if shared_group:
            return [f"$share/{shared_group}/{f}" for f in filters]
        return filters

    def match(self, topic: str) -> SourceMatch | None:
        for template in self.templates:
            found = template.match(topic)
            if found is not None:
                return found
        return None

    def for_format(self, format_name: str) -> SourceTable:
        table = SourceTable([])
        table.templates = [t for t in self.templates if t.format == format_name]
        return table
