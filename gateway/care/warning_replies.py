"""What a visitor's SMS reply to an emergency warning says: which elders, and how they are.

`<numbers> <status>`: "1 安全", "1 2 3 安全", "4转移", "5 已查看", "2号、3号 平安", "1 safe";
`全部<status>` / `all <status>`: every elder of that visitor still pending. Full-width digits
and punctuation are forgiven (NFKC). A reply without a status word is not about a warning
("1", "OK", "收到", "2", "到达" acknowledge alerts), so it is left to the alerts.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

Mark = Literal["checked", "safe", "shelter"]
"""How a visitor found an elder: checked on, safe, or moved to a shelter."""

STATUS_WORDS: dict[str, Mark] = {
    "已查看": "checked",
    "查看": "checked",
    "已看": "checked",
    "看过": "checked",
    "checked": "checked",
    "安全": "safe",
    "平安": "safe",
    "safe": "safe",
    "转移": "shelter",
    "已转移": "shelter",
    "安置": "shelter",
    "已安置": "shelter",
    "shelter": "shelter",
}
ALL_WORDS = ("全部", "全都", "都", "all")
MAX_NUMBER = 9999
"""Elders in one warning are numbered from 1; a longer number is not one of them."""

# Between numbers: "号" ("2号"), "和"/"及" ("1和2"); punctuation is turned into spaces first.
_JOINERS = re.compile(r"(?<=\d)\s*号|和|及")
_TOKEN = re.compile(r"\d+|[a-z]+|[^\W\d_a-z]+")


@dataclass(frozen=True, slots=True)
class WarningReply:
    """Elders `numbers` (None: all of the sender's pending elders) are `status`."""

    status: Mark
    numbers: tuple[int, ...] | None


@dataclass(frozen=True, slots=True)
class Unclear:
    """A status word with no clear elders ("安全" alone, "1 2 3 4 5 6 7 8 9 10000 安全"):
    about a warning, but the sender needs the reply syntax again."""


def parse_reply(text: str) -> WarningReply | Unclear | None:
    """What `text` marks; Unclear if it names a status but not which elders; None if it has
    no status word (not about a warning)."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    folded = re.sub(r"[^\w]+|_", " ", folded)
    folded = _JOINERS.sub(" ", folded)
    tokens = _TOKEN.findall(folded)
    words = [t for t in tokens if not t.isdigit()]
    numbers = [int(t) for t in tokens if t.isdigit()]
    every, status = _status(words)
    if status is None:
        # "1 安全了吗？": a status word among other words is still about a warning.
        return Unclear() if any(w in folded for w in STATUS_WORDS) else None
    if every == bool(numbers) or any(not 1 <= n <= MAX_NUMBER for n in numbers):
        return Unclear()
    return WarningReply(status, None if every else tuple(dict.fromkeys(numbers)))


def _status(words: list[str]) -> tuple[bool, Mark | None]:
    """(whether the words say "all", the status they name); None when they name no status
    or say something else too."""
    text = "".join(words)
    every = False
    for prefix in ALL_WORDS:
        if text.startswith(prefix) and text[len(prefix) :] in STATUS_WORDS:
            every, text = True, text[len(prefix) :]
            break
    return every, STATUS_WORDS.get(text)
