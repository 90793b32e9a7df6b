"""Group robots: WeCom (企业微信) and DingTalk (钉钉) webhooks that post markdown to a group chat.

A ROBOT message names its robot in `to_phone`; the robot's settings give the webhook URL (which
carries the robot's key, a secret) and, for DingTalk, the signing secret ("加签"). Both services
answer HTTP 200 with `{"errcode": 0, "errmsg": "ok"}`, or a non-zero errcode saying why not.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote_plus

import httpx

from gateway.alerts.notifiers.base import (
    Channel,
    Delivery,
    OutboundMessage,
    PermanentSendError,
    RetryableSendError,
)
from gateway.clock import Clock, SystemClock
from gateway.config import RobotSettings
from gateway.privacy import mask_personal_data

__all__ = ["RETRYABLE_ERRCODES", "RobotNotifier", "dingtalk_sign", "robot_markdown"]

RETRYABLE_ERRCODES: dict[str, frozenset[int]] = {
    # -1 system busy; 45009 api freq out of limit (20 messages a minute per robot);
    # 45033 api concurrent out of limit.
    "wecom": frozenset({-1, 45009, 45033}),
    # -1 system busy; 130101 send too fast (20 a minute); 410100 send too fast (限流);
    # 660026 and 90030 the robot's call quota is used up for now (webhook over limit).
    "dingtalk": frozenset({-1, 130101, 410100, 660026, 90030}),
}
"""Errcodes that a later attempt may get past: rate limits and the services' own trouble.
Every other errcode (WeCom 93000 invalid webhook URL, DingTalk 310000 sign or keyword
mismatch, 300001 / 400101 unknown token, ...) names the robot's setup, which a retry repeats."""

# WeCom refuses markdown content over 4096 bytes (UTF-8); DingTalk's limit is larger, and a
# group chat is no place for a longer text anyway.
_MAX_CONTENT_BYTES = 4096
_LINK_LABEL = {"zh": "点此确认", "en": "Acknowledge"}


class RobotNotifier:
    """Posts ROBOT messages to the configured WeCom and DingTalk group robots, by name."""

    name = "robot"

    def __init__(
        self,
        robots: Sequence[RobotSettings],
        *,
        http: httpx.AsyncClient | None = None,
        timeout_s: float = 10.0,
        wall_clock: Clock | None = None,
    ) -> None:
        """`http`: a shared client (its owner closes it); None: one of its own (`aclose`).
        `wall_clock`: the real time, never an event clock: DingTalk refuses a signature made
        more than an hour away from its own time."""
        names = [robot.name for robot in robots]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise ValueError(f"robots: names must be unique, repeated: {', '.join(duplicated)}")
        self._robots = {robot.name: robot for robot in robots}
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient()
        self._timeout = httpx.Timeout(timeout_s)
        self._clock = wall_clock or SystemClock()

    async def aclose(self) -> None:
        """Close the HTTP client, if this notifier made it."""
        if self._owns_http:
            await self._http.aclose()

    async def send(self, message: OutboundMessage) -> Delivery:
        """Post one message to the robot it names; raise RetryableSendError or
        PermanentSendError."""
        if message.channel is not Channel.ROBOT:
            raise PermanentSendError(f"robots send ROBOT messages only, not {message.channel}")
        robot = self._robots.get(message.to_phone)
        if robot is None:
            name = mask_personal_data(message.to_phone)
            raise PermanentSendError(f"no robot named {name!r} is configured")
        what = f"{robot.kind} robot {robot.name!r}"
        try:
            response = await self._http.post(
                self._url(robot), json=_payload(robot, message), timeout=self._timeout
            )
        except (httpx.UnsupportedProtocol, httpx.InvalidURL):
            raise PermanentSendError(f"{what}: the webhook URL is not an http(s) URL") from None
        except httpx.TransportError as exc:
            # Only the type: httpx's texts may quote the URL, and the URL carries the key.
            raise RetryableSendError(f"{what}: {type(exc).__name__}") from None
        if response.status_code != 200:
            text = f"{what}: HTTP {response.status_code}"
            if response.status_code == 429 or response.status_code >= 500:
                raise RetryableSendError(text)
            raise PermanentSendError(text)
        try:
            answer = response.json()
            errcode = int(answer["errcode"])
        except (ValueError, KeyError, TypeError):
            # A proxy's page in place of the service's answer: likely to pass.
            raise RetryableSendError(f"{what}: an answer that is not the robot's JSON") from None
        if errcode != 0:
            detail = mask_personal_data(str(answer.get("errmsg", "")))[:200]
            text = f"{what}: errcode {errcode}: {detail}"
            if errcode in RETRYABLE_ERRCODES[robot.kind]:
                raise RetryableSendError(text)
            raise PermanentSendError(text)
        return Delivery(provider=robot.kind, provider_id=None, status="sent")

    def _url(self, robot: RobotSettings) -> str:
        url = robot.url.get_secret_value()
        if robot.kind != "dingtalk" or robot.secret is None:
            return url
        timestamp = int(self._clock.now().timestamp() * 1000)
        sign = dingtalk_sign(robot.secret.get_secret_value(), timestamp)
        return f"{url}{'&' if '?' in url else '?'}timestamp={timestamp}&sign={sign}"


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's `sign`: HMAC-SHA256 of "timestamp\\nsecret" keyed by the secret, base64,
    then URL-encoded."""
    string_to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), string_to_sign, hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest))


def robot_markdown(message: OutboundMessage) -> tuple[str, str]:
    """(title, markdown text) for a group chat: phone and ID numbers masked, the acknowledge
    link last, the whole within WeCom's 4096 bytes."""
    title = mask_personal_data(message.title or message.body.split("\n", 1)[0])[:64]
    body = mask_personal_data(message.body)
    link = ""
    if message.link:
        label = _LINK_LABEL.get(message.language, _LINK_LABEL["en"])
        # Spaces and ")" would end a markdown link early; the gateway's links have neither.
        target = message.link.replace(" ", "%20").replace(")", "%29")
        link = f"\n\n[{label}]({target})"
    head = f"### {title}\n"
    room = _MAX_CONTENT_BYTES - len((head + link).encode())
    encoded = body.encode()
    if len(encoded) > room:
        body = encoded[: room - 3].decode("utf-8", "ignore") + "…"
    return title, head + body + link


def _payload(robot: RobotSettings, message: OutboundMessage) -> dict[str, Any]:
    title, text = robot_markdown(message)
    if robot.kind == "wecom":
        return {"msgtype": "markdown", "markdown": {"content": text}}
    return {"msgtype": "markdown", "markdown": {"title": title, "text": text}}
