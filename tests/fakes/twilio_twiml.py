"""Reading TwiML as Twilio executes it: what is said, what is gathered, where digits go."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit


@dataclass(frozen=True, slots=True)
class Said:
    """One `<Say>` the callee heard."""

    text: str
    language: str | None
    """The `language` attribute as written (Twilio's default is en-US)."""


@dataclass(frozen=True, slots=True)
class Gather:
    """The attributes of a `<Gather>` verb, with Twilio's defaults filled in."""

    action: str | None
    method: str
    num_digits: int | None
    input: str
    finish_on_key: str


def message_texts(twiml: str) -> list[str]:
    """The texts of the `<Message>` verbs in an app's answer to an incoming SMS."""
    return [text(verb) for verb in verbs(twiml) if verb.tag == "Message"]


def verbs(twiml: str) -> list[ET.Element]:
    """The verbs under `<Response>`, in order; none for an empty answer."""
    if not twiml.strip():
        return []
    try:
        root = ET.fromstring(twiml)
    except ET.ParseError as exc:
        raise ValueError(f"not TwiML ({exc}): {twiml[:200]!r}") from None
    if root.tag != "Response":
        raise ValueError(f"TwiML must have <Response> at its root, not <{root.tag}>")
    return list(root)


def text(element: ET.Element) -> str:
    """All the text inside a verb, trimmed."""
    # <Message> may wrap its text in <Body>; either way the text is all the element's text.
    return "".join(element.itertext()).strip()


def spoken(say: ET.Element) -> Said:
    """The text and language of one `<Say>`."""
    return Said(text=text(say), language=say.get("language"))


def parse_gather(verb: ET.Element) -> Gather:
    """A `<Gather>`'s attributes, defaults filled in as Twilio applies them."""
    num_digits = verb.get("numDigits")
    return Gather(
        action=verb.get("action"),
        method=verb.get("method", "POST").upper(),
        num_digits=int(num_digits) if num_digits else None,
        input=verb.get("input", "dtmf"),
        finish_on_key=verb.get("finishOnKey", "#"),
    )


def action_url(gather: Gather, twiml_url: str | None) -> str:
    """Where Twilio posts the digits; raise where Twilio would fail to."""
    if "dtmf" not in gather.input.split():
        raise ValueError(f'<Gather input="{gather.input}"> takes no key presses')
    if twiml_url is not None:
        # Twilio resolves a relative action, or posts to the document itself when there is none.
        return urljoin(twiml_url, gather.action or "")
    if not gather.action or not urlsplit(gather.action).scheme:
        raise ValueError(
            f"<Gather action={gather.action!r}> in inline Twiml: Twilio needs an absolute URL"
        )
    return gather.action


def keys_pressed(gather: Gather, digits: str) -> dict[str, str]:
    """Digits and FinishedOnKey as Twilio reports the keys pressed."""
    key = gather.finish_on_key
    if key and key in digits:
        return {"Digits": digits[: digits.index(key)], "FinishedOnKey": key}
    if gather.num_digits is not None:
        digits = digits[: gather.num_digits]
    return {"Digits": digits, "FinishedOnKey": ""}
