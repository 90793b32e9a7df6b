"""The page a group robot's acknowledge link opens: what happened, and a button to take it on.

The link's signed token is the only permission (docs/escalation.md); it names one alert. GET
shows the alert (event, elder, address, time, status) and never changes anything, so a chat app
fetching a preview acknowledges nothing; the button POSTs, with the person's name.
"""

from __future__ import annotations

import contextlib
from html import escape
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Path, status
from fastapi.responses import HTMLResponse

from gateway.alerts.book import AlertNotFound, TransitionRefused
from gateway.alerts.messages import event_name, format_time
from gateway.api.deps import Context
from gateway.care.households import get_household
from gateway.models import AlertStatus
from gateway.store.alerts import AlertRecord, get_alert

router = APIRouter(prefix="/ack", tags=["acknowledge links"], include_in_schema=False)

Token = Annotated[str, Path(min_length=10, max_length=200, pattern=r"^[A-Za-z0-9_.\-]+$")]
Name = Annotated[str, Form(min_length=1, max_length=40)]

_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body{{font-family:sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem}}
dt{{color:#555}}dd{{margin:0 0 .6rem 0;font-size:1.1rem}}
button{{font-size:1.2rem;padding:.6rem 1.2rem}}input{{font-size:1.1rem;padding:.4rem}}</style>
</head><body><h1>{title}</h1>{content}</body></html>"""
_STATUS = {
    AlertStatus.OPEN: "待处理",
    AlertStatus.NOTIFIED: "已通知，待确认",
    AlertStatus.ESCALATED: "已升级，待确认",
    AlertStatus.ACKNOWLEDGED: "已有人确认",
    AlertStatus.RESOLVED: "已处理完毕",
}


async def _alert(context: Context, token: str) -> tuple[AlertRecord, str, str]:
    links = context.ack_links
    alert_id = links.alert_id(token) if links is not None else None
    if alert_id is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "link not valid or expired")
    async with context.db.connect() as conn:
        alert = await get_alert(conn, alert_id)
        household = await get_household(conn, alert.household_id) if alert else None
    if alert is None or household is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "link not valid or expired")
    zone = household.zone(context.zone)
    details = (
        f"<dl><dt>事件</dt><dd>{escape(event_name(alert.rule_id, 'zh'))}</dd>"
        f"<dt>老人</dt><dd>{escape(household.elder_name)}</dd>"
        f"<dt>地址</dt><dd>{escape(household.address.one_line() or '-')}</dd>"
        f"<dt>时间</dt><dd>{escape(format_time(alert.opened_at, zone, 'zh'))}</dd>"
        f"<dt>状态</dt><dd>{_STATUS[alert.status]}"
        + (f"（{escape(alert.acknowledged_by)}）" if alert.acknowledged_by else "")
        + "</dd></dl>"
    )
    return alert, details, event_name(alert.rule_id, "zh")


@router.get("/{token}", response_class=HTMLResponse)
async def show(token: Token, context: Context) -> HTMLResponse:
    alert, details, event = await _alert(context, token)
    form = ""
    if alert.status not in (AlertStatus.ACKNOWLEDGED, AlertStatus.RESOLVED):
        form = (
            f'<form method="post" action="/ack/{escape(token)}">'
            '<p><label>您的姓名 <input name="name" required maxlength="40"></label></p>'
            "<p><button>我来处理（确认报警）</button></p></form>"
        )
    return HTMLResponse(_PAGE.format(title=escape(event), content=details + form))


@router.post("/{token}", response_class=HTMLResponse)
async def take_on(token: Token, name: Name, context: Context) -> HTMLResponse:
    alert, _, event = await _alert(context, token)
    by = f"{name.strip()}（群链接）"
    with contextlib.suppress(AlertNotFound, TransitionRefused):  # resolved: the page says so
        await context.book.acknowledge(alert.id, by)
    _, details, _ = await _alert(context, token)
    return HTMLResponse(
        _PAGE.format(title=escape(event), content="<p>已记录，谢谢。</p>" + details)
    )
