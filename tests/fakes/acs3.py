"""Alibaba Cloud's v3 request signature (ACS3-HMAC-SHA256), checked as its API gateway does.

alibabacloud-tea-openapi (the v4 SDKs' core) signs every request this way; fakes of Alibaba
Cloud APIs check requests with `check_request` and keep the nonces themselves.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from calendar import timegm
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

ALGORITHM = "ACS3-HMAC-SHA256"
MAX_CLOCK_SKEW_S = 15 * 60
"""How far x-acs-date may be from the server's clock (Aliyun allows 15 minutes)."""

_AUTHORIZATION = re.compile(
    r"^(?P<algorithm>\S+) Credential=(?P<key_id>[^,]+),"
    r"SignedHeaders=(?P<signed>[^,]+),Signature=(?P<signature>[0-9a-f]+)$"
)


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """A request as received: the parts the signature covers."""

    method: str
    path: str
    query: Mapping[str, str]
    """Decoded query parameters."""
    headers: Mapping[str, str]
    """Lowercased names; repeated headers joined with "," as the signing scheme does."""
    body: bytes


def check_request(
    request: SignedRequest, access_keys: Mapping[str, str]
) -> tuple[str | None, str | None]:
    """(AccessKeyId the request names, Aliyun's error code or None when the signature holds).

    `access_keys` maps each AccessKeyId the fake knows to its secret.
    """
    match = _AUTHORIZATION.match(request.headers.get("authorization", ""))
    if match is None or match["algorithm"] != ALGORITHM:
        return None, "IncompleteSignature"
    key_id = match["key_id"]
    secret = access_keys.get(key_id)
    if secret is None:
        return key_id, "InvalidAccessKeyId.NotFound"
    signed = match["signed"].split(";")
    # host and every x-acs-* header must be signed, or they could be changed in transit.
    required = {"host", *(h for h in request.headers if h.startswith("x-acs-"))}
    if not required <= set(signed) or any(h not in request.headers for h in signed):
        return key_id, "IncompleteSignature"
    payload_hash = hashlib.sha256(request.body).hexdigest()
    if request.headers.get("x-acs-content-sha256") != payload_hash:
        return key_id, "SignatureDoesNotMatch"
    expected = acs3_signature(
        secret,
        request.method,
        request.path,
        request.query,
        {name: request.headers[name] for name in signed},
        payload_hash,
    )
    if not hmac.compare_digest(expected, match["signature"]):
        return key_id, "SignatureDoesNotMatch"
    if not _fresh(request.headers.get("x-acs-date", "")):
        return key_id, "InvalidTimeStamp.Expired"
    return key_id, None


def acs3_signature(
    secret: str,
    method: str,
    path: str,
    query: Mapping[str, str],
    signed_headers: Mapping[str, str],
    payload_hash: str,
) -> str:
    """The hex ACS3-HMAC-SHA256 signature of a request, as Alibaba Cloud's v3 scheme defines it.

    Canonical request: method, path, the query sorted by name with names and values
    percent-encoded (RFC 3986), the signed headers lowercased and sorted as `name:value` lines,
    their names joined by ";", and the payload's SHA-256; the string to sign is the algorithm
    and that request's SHA-256 (hex), signed with the AccessKey secret.
    """
    canonical_query = "&".join(f"{_encode(name)}={_encode(query[name])}" for name in sorted(query))
    names = sorted(name.lower() for name in signed_headers)
    lowered = {name.lower(): value for name, value in signed_headers.items()}
    canonical_headers = "".join(f"{name}:{lowered[name].strip()}\n" for name in names)
    canonical_request = "\n".join(
        [method, path or "/", canonical_query, canonical_headers, ";".join(names), payload_hash]
    )
    digest = hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()
    string_to_sign = f"{ALGORITHM}\n{digest}"
    return hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()


def _encode(value: str) -> str:
    return quote(value, safe="~")


def _fresh(stamp: str) -> bool:
    try:
        sent = timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        return False
    return abs(time.time() - sent) <= MAX_CLOCK_SKEW_S
