"""GET /api/live (WebSocket): committed changes, as they happen, for the caller's households.

Browsers cannot set an Authorization header on a WebSocket, so the first frame carries the token:
`{"token": "..."}`, within `SIGN_IN_TIMEOUT_S`, or the socket is closed with 4401.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from fastapi import APIRouter, WebSocket
from sqlalchemy.exc import SQLAlchemyError
from starlette.websockets import WebSocketDisconnect

from gateway.api.auth import Principal, authenticate
from gateway.api.context import ApiContext
from gateway.api.scope import visible_households
from gateway.live.hub import Subscriber, Visible, VisibleLoader

log = logging.getLogger(__name__)

router = APIRouter(tags=["live"])

SIGN_IN_TIMEOUT_S = 10.0
UNAUTHORIZED = 4401
SERVICE_RESTART = 1012


@router.websocket("/api/live")
async def live_feed(websocket: WebSocket) -> None:
    """Sign in with the first frame, then hear `hello`, `changes` and `resync` frames."""
    context = websocket.app.state.context
    assert isinstance(context, ApiContext)
    await websocket.accept()
    principal = await _sign_in(websocket, context)
    if principal is None:
        await _close(websocket, UNAUTHORIZED, "unauthorized")
        return
    live = context.live
    if live is None or live.hub.closed:
        await _close(websocket, SERVICE_RESTART, "service restart")
        return
    reload_visible = _visibility(context, principal)
    # Subscribed before the hello: what commits while the page fetches after it is heard too.
    with live.subscribe(await reload_visible(), reload_visible) as subscriber:
        await websocket.send_json(
            {
                "type": "hello",
                "name": principal.name,
                "role": principal.role,
                "township": principal.township,
            }
        )
        sending = asyncio.create_task(_send_frames(websocket, subscriber))
        hearing = asyncio.create_task(_until_disconnected(websocket))
        try:
            await asyncio.wait({sending, hearing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sending, hearing):
                task.cancel()
            await asyncio.gather(sending, hearing, return_exceptions=True)
        if sending.done() and not sending.cancelled() and sending.result():
            await _close(websocket, SERVICE_RESTART, "service restart")


async def _sign_in(websocket: WebSocket, context: ApiContext) -> Principal | None:
    """The principal the first frame's token stands for, or None."""
    try:
        text = await asyncio.wait_for(websocket.receive_text(), SIGN_IN_TIMEOUT_S)
    except (TimeoutError, WebSocketDisconnect, KeyError, RuntimeError):
        return None
    try:
        token = json.loads(text).get("token")
    except (ValueError, AttributeError):
        return None
    if not isinstance(token, str) or not token or len(token) > 1000:
        return None
    return await authenticate(context, token)


def _visibility(context: ApiContext, principal: Principal) -> VisibleLoader:
    """Loads the household ids the principal may see (None: all), as the REST API judges."""

    async def load() -> Visible:
        query = visible_households(principal)
        if query is None:
            return None
        async with context.db.connect() as conn:
            return frozenset(str(h) for h in await conn.scalars(query))

    return load


async def _send_frames(websocket: WebSocket, subscriber: Subscriber) -> bool:
    """Send frames until the feed closes (True) or the client goes (False)."""
    while True:
        try:
            frame = await subscriber.next_frame()
        except SQLAlchemyError:
            # The caller's scope could not be reloaded: the page reconnects and starts afresh.
            log.exception("live feed: could not reload a subscriber's households")
            return True
        if frame is None:
            return True
        try:
            await websocket.send_text(json.dumps(frame, ensure_ascii=False))
        except (WebSocketDisconnect, RuntimeError, OSError):
            return False


async def _until_disconnected(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, until it goes."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(RuntimeError, OSError):  # the client may have gone already
        await websocket.close(code, reason)
