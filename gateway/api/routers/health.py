"""Liveness for load balancers and operators."""

from __future__ import annotations

from typing import Literal

import sqlalchemy as sa
from fastapi import APIRouter, Response
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from gateway.api.deps import Context
from gateway.api.strict_json import StrictJsonRoute

router = APIRouter(tags=["health"], route_class=StrictJsonRoute)


class Component(BaseModel):
    ok: bool
    detail: str


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    broker: Component
    database: Component


@router.get("/api/health", response_model=Health, responses={503: {"model": Health}})
async def health(context: Context, response: Response) -> Health:
    """Broker and database status; 503 when either is down. No token needed."""
    broker = context.broker_status()
    try:
        async with context.db.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
        database = Component(ok=True, detail=context.db.url.get_backend_name())
    except (SQLAlchemyError, OSError) as exc:
        database = Component(ok=False, detail=type(exc).__name__)
    result = Health(
        status="ok" if broker.connected and database.ok else "degraded",
        broker=Component(ok=broker.connected, detail=broker.url),
        database=database,
    )
    if result.status != "ok":
        response.status_code = 503
    return result
