"""Prometheus metrics (served when [http] metrics is not "off")."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy.exc import SQLAlchemyError

from gateway.api.deps import Context
from gateway.api.strict_json import StrictJsonRoute
from gateway.models import Severity
from gateway.store.alerts import open_counts_by_severity, open_flagged_by_reason

FLAG_REASONS = ("control_room", "undeliverable", "no_recipient")

router = APIRouter(tags=["metrics"], route_class=StrictJsonRoute)

METRICS_PATH = "/metrics"


@router.get(METRICS_PATH, include_in_schema=False)
async def metrics(context: Context) -> Response:
    """Prometheus text exposition."""
    try:
        async with context.db.connect() as conn:
            counts = await open_counts_by_severity(conn)
            flagged = await open_flagged_by_reason(conn)
        for reason in FLAG_REASONS:
            context.metrics.alerts_flagged.labels(reason).set(flagged.get(reason, 0))
        for severity in Severity:
            context.metrics.alerts_open.labels(severity.value).set(counts.get(severity.value, 0))
    except (SQLAlchemyError, OSError):
        pass  # the other metrics are still worth serving while the database is down
    return Response(context.metrics.exposition(), media_type="text/plain; version=0.0.4")
