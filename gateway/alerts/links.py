"""Acknowledge links for group robots: a signed, expiring token naming one alert.

A WeCom or DingTalk group has no account on the gateway, so the link itself is the permission
to acknowledge that one alert (and nothing else), for a week. Signed with itsdangerous, keyed
with the admin token, so every gateway process sharing the database accepts the others' links.
"""

from __future__ import annotations

from itsdangerous import BadSignature, URLSafeTimedSerializer

LINK_MAX_AGE_S = 7 * 24 * 3600
ACK_PATH = "/ack/"


class AckLinks:
    def __init__(self, secret: str, public_url: str) -> None:
        self._signer = URLSafeTimedSerializer(secret, salt="alert-ack-link")
        self.base = public_url.rstrip("/") + ACK_PATH

    def url(self, alert_id: int) -> str:
        return self.base + self._signer.dumps(alert_id)

    def alert_id(self, token: str) -> int | None:
        """The alert a token names, or None when it is forged, altered or expired."""
        try:
            value = self._signer.loads(token, max_age=LINK_MAX_AGE_S)
        except BadSignature:  # SignatureExpired is one too
            return None
        return value if isinstance(value, int) and not isinstance(value, bool) else None
