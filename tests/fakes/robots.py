"""Fake WeCom (企业微信) and DingTalk (钉钉) group-robot webhooks on loopback, in one server.

WeCom: `POST /cgi-bin/webhook/send?key=...`; DingTalk: `POST /robot/send?access_token=...`, with
`timestamp` and `sign` when the robot has a signing secret (checked as DingTalk documents:
HMAC-SHA256 of "timestamp\\nsecret", base64, within an hour of the server's clock). Both answer
HTTP 200 with `{"errcode": ..., "errmsg": ...}`. Error codes for malformed bodies are this
fake's approximation; the key, token and signature errors are the services' own.

Tests use it as a context manager; by hand: `python -m tests.fakes.robots --port 8992` prints
the two webhook URLs to paste into `[escalation] robots`.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.loopback import LoopbackServer

DEFAULT_WECOM_KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
DEFAULT_DINGTALK_TOKEN = "c0ffee" * 8
DEFAULT_DINGTALK_SECRET = "SEC" + "0123456789abcdef" * 4
MAX_SIGN_AGE_S = 3600
"""DingTalk refuses a timestamp more than an hour from its own time."""

WECOM_PATH = "/cgi-bin/webhook/send"
DINGTALK_PATH = "/robot/send"
_WECOM_MAX_BYTES = 4096


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the fake received it, and what it answered."""

    kind: str | None
    """"wecom" or "dingtalk" by path; None for any other path."""
    method: str
    path: str
    query: Mapping[str, str]
    payload: Any
    """The JSON body, or None when it was not JSON."""
    raw_body: bytes
    headers: Mapping[str, str]
    status: int
    errcode: int
    errmsg: str
    received_at: float

    @property
    def markdown(self) -> str | None:
        """The markdown text posted (WeCom's `content`, DingTalk's `text`)."""
        if not isinstance(self.payload, dict) or self.payload.get("msgtype") != "markdown":
            return None
        markdown = self.payload.get("markdown") or {}
        text = markdown.get("content" if self.kind == "wecom" else "text")
        return text if isinstance(text, str) else None


class FakeRobots(LoopbackServer):
    """A real HTTP server on 127.0.0.1 answering like qyapi.weixin.qq.com and oapi.dingtalk.com
    for their group robots' webhooks."""

    def __init__(
        self,
        *,
        wecom_keys: Iterable[str] = (DEFAULT_WECOM_KEY,),
        dingtalk_robots: Mapping[str, str | None] | None = None,
        port: int = 0,
        delay_s: float = 0.0,
        on_request: Callable[[RecordedRequest], None] | None = None,
    ) -> None:
        self.wecom_keys = set(wecom_keys)
        self.dingtalk_robots: dict[str, str | None] = dict(
            dingtalk_robots
            if dingtalk_robots is not None
            else {DEFAULT_DINGTALK_TOKEN: DEFAULT_DINGTALK_SECRET}
        )
        """DingTalk access tokens and each robot's signing secret (None: the robot signs not)."""
        self.delay_s = delay_s
        self._on_request = on_request
        self._requests: list[RecordedRequest] = []
        self._failures: list[tuple[str | None, int, int, str]] = []
        self._changed = threading.Condition()
        super().__init__(_handler_for(self), port)

    def wecom_url(self, key: str = DEFAULT_WECOM_KEY) -> str:
        return f"{self.base_url}{WECOM_PATH}?key={key}"

    def dingtalk_url(self, token: str = DEFAULT_DINGTALK_TOKEN) -> str:
        return f"{self.base_url}{DINGTALK_PATH}?access_token={token}"

    def fail_next(
        self,
        n: int = 1,
        *,
        errcode: int = -1,
        errmsg: str = "system busy",
        status: int = 200,
        kind: str | None = None,
    ) -> None:
        """Answer the next `n` authenticated requests (of `kind` only, if given) with `errcode`,
        or with HTTP `status` and a plain-text body when it is not 200."""
        with self._changed:
            self._failures.extend([(kind, status, errcode, errmsg)] * n)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._changed:
            return list(self._requests)

    @property
    def messages(self) -> list[RecordedRequest]:
        """Accepted messages, both services."""
        return [r for r in self.requests if r.status == 200 and r.errcode == 0]

    def wait_for_requests(self, n: int, timeout: float = 2.0) -> list[RecordedRequest]:
        """Block until at least `n` requests have arrived; raise TimeoutError otherwise."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._requests) >= n, timeout):
                raise TimeoutError(f"fake robots got {len(self._requests)} of {n} requests")
            return list(self._requests)

    def _record(self, request: RecordedRequest) -> None:
        with self._changed:
            self._requests.append(request)
            self._changed.notify_all()
        if self._on_request is not None:
            self._on_request(request)

    def _take_failure(self, kind: str) -> tuple[int, int, str] | None:
        with self._changed:
            for index, (only, status, errcode, errmsg) in enumerate(self._failures):
                if only in (None, kind):
                    del self._failures[index]
                    return status, errcode, errmsg
            return None

    def _answer(
        self, kind: str | None, method: str, query: Mapping[str, str], payload: Any
    ) -> tuple[int, int, str]:
        if kind is None:
            return 404, 404, "not found"
        if method != "POST":
            return 405, 405, "method not allowed"
        refusal = (
            _wecom_refusal(self.wecom_keys, query)
            if kind == "wecom"
            else _dingtalk_refusal(self.dingtalk_robots, query)
        )
        if refusal is not None:
            return 200, *refusal
        failure = self._take_failure(kind)
        if failure is not None:
            return failure
        refusal = _body_refusal(kind, payload)
        return (200, *refusal) if refusal is not None else (200, 0, "ok")


def _wecom_refusal(keys: set[str], query: Mapping[str, str]) -> tuple[int, str] | None:
    if query.get("key") not in keys:
        return (
            93000,
            "invalid webhook url, hint: [fake], more info at https://open.work.weixin.qq.com/devtool/query?e=93000",
        )
    return None


def _dingtalk_refusal(
    robots: Mapping[str, str | None], query: Mapping[str, str]
) -> tuple[int, str] | None:
    token = query.get("access_token", "")
    if token not in robots:
        return 300001, "token is not exist"
    secret = robots[token]
    if secret is None:
        return None
    try:
        timestamp = int(query.get("timestamp", ""))
        given = base64.b64decode(query.get("sign", ""), validate=True)
    except (ValueError, binascii.Error):
        return (
            310000,
            "sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]",
        )
    if abs(time.time() * 1000 - timestamp) > MAX_SIGN_AGE_S * 1000:
        return 310000, "invalid timestamp"
    expected = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(given, expected):
        return (
            310000,
            "sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]",
        )
    return None


def _body_refusal(kind: str, payload: Any) -> tuple[int, str] | None:
    if not isinstance(payload, dict):
        return 40035, "invalid json"
    if payload.get("msgtype") != "markdown":
        # Both take other types too (text, link, ...); the gateway sends only markdown.
        return 40008, f"invalid message type {payload.get('msgtype')!r} for this fake"
    markdown = payload.get("markdown")
    if not isinstance(markdown, dict):
        return 40035, "missing markdown"
    if kind == "wecom":
        content = markdown.get("content")
        if not isinstance(content, str) or not content:
            return 44004, "empty content"
        if len(content.encode()) > _WECOM_MAX_BYTES:
            return 40058, "markdown.content exceed max length 4096"
        return None
    if not all(isinstance(markdown.get(k), str) and markdown.get(k) for k in ("title", "text")):
        return 40035, "缺少参数 markdown.title / markdown.text"
    return None


def _handler_for(fake: FakeRobots) -> type[BaseHTTPRequestHandler]:
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
            query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
            kind = {WECOM_PATH: "wecom", DINGTALK_PATH: "dingtalk"}.get(url.path)
            try:
                payload = json.loads(raw) if raw else None
            except (json.JSONDecodeError, UnicodeDecodeError):
                payload = None
            status, errcode, errmsg = fake._answer(kind, self.command, query, payload)
            fake._record(
                RecordedRequest(
                    kind=kind,
                    method=self.command,
                    path=url.path,
                    query=query,
                    payload=payload,
                    raw_body=raw,
                    headers=dict(self.headers.items()),
                    status=status,
                    errcode=errcode,
                    errmsg=errmsg,
                    received_at=received_at,
                )
            )
            if fake.delay_s > 0:
                time.sleep(fake.delay_s)  # each request has its own thread: answers overlap
            if status == 200:
                body = json.dumps({"errcode": errcode, "errmsg": errmsg}, ensure_ascii=False)
                content_type = "application/json; charset=utf-8"
            else:
                body, content_type = errmsg, "text/plain; charset=utf-8"
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # requests are recorded (and printed by the CLI) instead

    return Handler


def _print_request(request: RecordedRequest) -> None:
    print(
        f"{request.status} {request.kind or request.path} errcode={request.errcode} "
        f"{request.errmsg}\n{request.markdown or request.raw_body.decode('utf-8', 'replace')}\n",
        flush=True,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake WeCom / DingTalk robot webhooks")
    parser.add_argument("--port", type=int, default=8992, help="0 picks a free port")
    args = parser.parse_args(argv)
    with FakeRobots(port=args.port, on_request=_print_request) as fake:
        print(f"WeCom:    {fake.wecom_url()}", flush=True)
        print(f"DingTalk: {fake.dingtalk_url()}  secret {DEFAULT_DINGTALK_SECRET}", flush=True)
        print("(Ctrl-C stops)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
