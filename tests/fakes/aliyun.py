"""A fake Alibaba Cloud SMS API (Dysmsapi 2017-05-25, SendSms) on loopback.

It checks requests the way the real API does: the ACS3-HMAC-SHA256 signature of the v3 request
scheme (the algorithm alibabacloud-tea-openapi signs with), recomputed here from the request as
received, the AccessKeyId, the timestamp and the nonce; then the signature name, the template and
its variables. It answers in Aliyun's JSON shape (Code, Message, BizId, RequestId).

Tests use it as a context manager; by hand: `python -m tests.fakes.aliyun --port 8991`, then
set `[aliyun] endpoint = "127.0.0.1:8991"` and `protocol = "http"`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from string import Template
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.fakes.acs3 import SignedRequest, check_request
from tests.fakes.loopback import LoopbackServer

DEFAULT_ACCESS_KEY_ID = "LTAI5tFakeAccessKeyId01"
DEFAULT_ACCESS_KEY_SECRET = "fake-access-key-secret-0123456789"
DEFAULT_SIGN_NAME = "居家关爱"
DEFAULT_TEMPLATE_CODE = "SMS_480000001"
DEFAULT_TEMPLATE = "${elder}家（${address}）${event}，时间${time}。${action}${ack}"
"""The template docs/escalation.md suggests."""

_VARIABLE = re.compile(r"\$\{(\w+)\}")
_MAINLAND_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_MESSAGES = {
    "OK": "OK",
    "IncompleteSignature": "The request signature does not conform to Aliyun standards.",
    "InvalidAccessKeyId.NotFound": "Specified access key is not found.",
    "SignatureDoesNotMatch": "Specified signature does not match our calculation.",
    "InvalidTimeStamp.Expired": "Specified time stamp or date value is expired.",
    "SignatureNonceUsed": "Specified signature nonce was used already.",
    "InvalidAction.NotFound": "Specified api is not found, please check your url and method.",
    "MissingParameter": "The input parameter that is mandatory for processing this request is "
    "not supplied.",
    "Throttling.User": "Request was denied due to user flow control.",
    "InternalError": "The request processing has failed due to some unknown error.",
    "ServiceUnavailable": "The request has failed due to a temporary failure of the server.",
    "isv.BUSINESS_LIMIT_CONTROL": "触发号码分钟级流控Permits:1",
    "isv.MOBILE_NUMBER_ILLEGAL": "非法手机号",
    "isv.SMS_SIGNATURE_ILLEGAL": "该账号下找不到对应签名",
    "isv.SMS_TEMPLATE_ILLEGAL": "该账号下找不到对应模板",
    "isv.INVALID_JSON_PARAM": "JSON参数不合法，只接受字符串值",
    "isv.TEMPLATE_MISSING_PARAMETERS": "模板变量缺少对应参数值",
}
_DEFAULT_CODE = {200: "isv.BUSINESS_LIMIT_CONTROL", 400: "Throttling.User", 500: "InternalError"}


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the fake received it, and what it answered."""

    method: str
    path: str
    params: Mapping[str, str]
    """Query and form parameters (SendSms's PhoneNumbers, SignName, ...)."""
    headers: Mapping[str, str]
    raw_body: bytes
    access_key_id: str | None
    signature_ok: bool
    status: int
    code: str
    """The `Code` answered: "OK" or an error code."""
    text: str | None
    """The SMS as a phone would show it, for an accepted message."""
    received_at: float

    @property
    def template_param(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.params.get("TemplateParam") or "{}")
        return parsed


class FakeAliyunSms(LoopbackServer):
    """A real HTTP server on 127.0.0.1 answering like dysmsapi.aliyuncs.com for SendSms."""

    def __init__(
        self,
        access_key_id: str = DEFAULT_ACCESS_KEY_ID,
        access_key_secret: str = DEFAULT_ACCESS_KEY_SECRET,
        *,
        sign_name: str = DEFAULT_SIGN_NAME,
        templates: Mapping[str, str] | None = None,
        port: int = 0,
        delay_s: float = 0.0,
        on_request: Callable[[RecordedRequest], None] | None = None,
    ) -> None:
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.sign_name = sign_name
        self.templates = dict(templates or {DEFAULT_TEMPLATE_CODE: DEFAULT_TEMPLATE})
        """Approved templates by code; variables are written ${name}."""
        self.delay_s = delay_s
        self._on_request = on_request
        self._requests: list[RecordedRequest] = []
        self._failures: list[tuple[int, str, str | None]] = []
        self._nonces: set[str] = set()
        self._changed = threading.Condition()
        super().__init__(_handler_for(self), port)

    @property
    def endpoint(self) -> str:
        """What `[aliyun] endpoint` is set to (with protocol "http")."""
        return f"127.0.0.1:{self.port}"

    def fail_next(
        self, n: int = 1, *, status: int = 500, code: str | None = None, message: str | None = None
    ) -> None:
        """Answer the next `n` correctly signed requests with `code`: with HTTP 200 (a refused
        message, Aliyun's business errors) or an HTTP error status (throttling, outage)."""
        chosen = code or _DEFAULT_CODE.get(status, "ServiceUnavailable")
        with self._changed:
            self._failures.extend([(status, chosen, message)] * n)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._changed:
            return list(self._requests)

    @property
    def messages(self) -> list[RecordedRequest]:
        """Accepted SendSms requests."""
        return [r for r in self.requests if r.code == "OK"]

    def wait_for_requests(self, n: int, timeout: float = 2.0) -> list[RecordedRequest]:
        """Block until at least `n` requests have arrived; raise TimeoutError otherwise."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._requests) >= n, timeout):
                raise TimeoutError(f"fake Aliyun got {len(self._requests)} of {n} requests")
            return list(self._requests)

    def _record(self, request: RecordedRequest) -> None:
        with self._changed:
            self._requests.append(request)
            self._changed.notify_all()
        if self._on_request is not None:
            self._on_request(request)

    def _take_failure(self) -> tuple[int, str, str | None] | None:
        with self._changed:
            return self._failures.pop(0) if self._failures else None

    def _nonce_is_new(self, nonce: str) -> bool:
        with self._changed:
            if nonce in self._nonces:
                return False
            self._nonces.add(nonce)
            return True

    def _authenticate(self, request: _Incoming) -> tuple[str | None, str | None]:
        """(AccessKeyId named, error code or None) for a request signed with ACS3."""
        signed = SignedRequest(
            request.method, request.path, request.query, request.headers, request.body
        )
        key_id, refusal = check_request(signed, {self.access_key_id: self.access_key_secret})
        if refusal is None and not self._nonce_is_new(
            request.headers.get("x-acs-signature-nonce", "")
        ):
            refusal = "SignatureNonceUsed"
        return key_id, refusal

    def _answer(self, request: _Incoming) -> tuple[int, str, str | None, str | None]:
        """(HTTP status, Code, Message override, accepted SMS text)."""
        headers, params = request.headers, request.params
        if headers.get("x-acs-action") != "SendSms" or headers.get("x-acs-version") != (
            "2017-05-25"
        ):
            return 404, "InvalidAction.NotFound", None, None
        failure = self._take_failure()
        if failure is not None:
            status, code, message = failure
            return status, code, message, None
        for name in ("PhoneNumbers", "SignName", "TemplateCode"):
            if not params.get(name):
                return 400, "MissingParameter", f"{name} is mandatory for this action.", None
        numbers = params["PhoneNumbers"].split(",")
        if not all(_MAINLAND_MOBILE.match(number) for number in numbers):
            return 200, "isv.MOBILE_NUMBER_ILLEGAL", None, None
        if params["SignName"] != self.sign_name:
            return 200, "isv.SMS_SIGNATURE_ILLEGAL", None, None
        template = self.templates.get(params["TemplateCode"])
        if template is None:
            return 200, "isv.SMS_TEMPLATE_ILLEGAL", None, None
        try:
            variables = json.loads(params.get("TemplateParam") or "{}")
        except json.JSONDecodeError:
            return 200, "isv.INVALID_JSON_PARAM", None, None
        if not isinstance(variables, dict) or not all(
            isinstance(v, str) for v in variables.values()
        ):
            return 200, "isv.INVALID_JSON_PARAM", None, None
        if not set(_VARIABLE.findall(template)) <= set(variables):
            return 200, "isv.TEMPLATE_MISSING_PARAMETERS", None, None
        text = f"【{self.sign_name}】" + Template(template).safe_substitute(variables)
        return 200, "OK", None, text


@dataclass(frozen=True, slots=True)
class _Incoming:
    method: str
    path: str
    query: Mapping[str, str]
    params: Mapping[str, str]
    headers: Mapping[str, str]
    """Lowercased names; repeated headers joined with "," as the signing scheme does."""
    body: bytes


def _handler_for(fake: FakeAliyunSms) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self._handle()

        def do_GET(self) -> None:
            self._handle()

        def _handle(self) -> None:
            received_at = time.monotonic()
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            url = urlsplit(self.path)
            query = dict(parse_qsl(url.query, keep_blank_values=True))
            params = dict(query)
            if self.headers.get_content_type() == "application/x-www-form-urlencoded":
                params |= dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
            headers: dict[str, str] = {}
            for name in self.headers:
                values = sorted(v.strip() for v in self.headers.get_all(name) or [])
                headers[name.lower()] = ",".join(values)
            incoming = _Incoming(self.command, url.path, query, params, headers, raw)
            key_id, refusal = fake._authenticate(incoming)
            if refusal is None:
                status, code, message, text = fake._answer(incoming)
            else:
                status = 404 if refusal == "InvalidAccessKeyId.NotFound" else 400
                code, message, text = refusal, None, None
            # Recorded before answering, so a test that saw the response also sees the record.
            fake._record(
                RecordedRequest(
                    method=self.command,
                    path=url.path,
                    params=params,
                    headers=headers,
                    raw_body=raw,
                    access_key_id=key_id,
                    signature_ok=refusal is None,
                    status=status,
                    code=code,
                    text=text,
                    received_at=received_at,
                )
            )
            if fake.delay_s > 0:
                time.sleep(fake.delay_s)  # each request has its own thread: answers overlap
            body = json.dumps(_payload(status, code, message), ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # requests are recorded (and printed by the CLI) instead

    return Handler


def _payload(status: int, code: str, message: str | None) -> dict[str, Any]:
    request_id = str(uuid.uuid4()).upper()
    text = message or _MESSAGES.get(code, "Error")
    if code == "OK":
        biz_id = f"{secrets.randbelow(10**18):018d}^0"
        return {"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": request_id}
    payload: dict[str, Any] = {"Code": code, "Message": text, "RequestId": request_id}
    if status >= 400:  # the API gateway's errors carry where and what to read
        payload |= {
            "HostId": "dysmsapi.aliyuncs.com",
            "Recommend": f"https://api.aliyun.com/troubleshoot?q={code}&product=Dysmsapi",
        }
    return payload


def _print_request(request: RecordedRequest) -> None:
    shown = request.text or request.params.get("TemplateParam", "")
    print(
        f"{request.status} {request.code} to={request.params.get('PhoneNumbers', '-')} "
        f"signature={'ok' if request.signature_ok else 'BAD'}: {shown}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake Alibaba Cloud SMS API on 127.0.0.1")
    parser.add_argument("--port", type=int, default=8991, help="0 picks a free port")
    parser.add_argument("--key-id", default=DEFAULT_ACCESS_KEY_ID, help="AccessKeyId to accept")
    parser.add_argument("--secret", default=DEFAULT_ACCESS_KEY_SECRET, help="its secret")
    parser.add_argument("--sign-name", default=DEFAULT_SIGN_NAME, help="approved signature")
    parser.add_argument("--template-code", default=DEFAULT_TEMPLATE_CODE)
    parser.add_argument("--template", default=DEFAULT_TEMPLATE, help="its text, ${var}s")
    args = parser.parse_args(argv)
    with FakeAliyunSms(
        args.key_id,
        args.secret,
        sign_name=args.sign_name,
        templates={args.template_code: args.template},
        port=args.port,
        on_request=_print_request,
    ) as fake:
        print(f"fake Aliyun SMS for {args.key_id} at {fake.endpoint} (Ctrl-C stops)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
