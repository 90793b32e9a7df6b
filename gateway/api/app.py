"""The FastAPI application: one router per resource, state handed in by the composition root."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.middleware import Middleware

from gateway.api.context import ApiContext
from gateway.api.errors import InternalErrors, validation_failed
from gateway.api.gate import BearerGate
from gateway.api.routers import (
    accounts,
    ack_links,
    alerts,
    audit,
    away,
    care_services,
    coverage,
    dashboard,
    dead_letters,
    health,
    household_settings,
    households,
    ledger,
    live,
    me,
    metrics,
    overview,
    reports,
    series,
    situation,
    visit_exports,
    visitors,
    visits,
    warnings,
    webhooks,
)

Exposure = Literal["public", "token", "off"]
"""Who may read an endpoint: anyone, holders of the bearer token, or nobody (404)."""

OPEN_PATHS = frozenset({"/api/health"})
"""Paths under /api/ that need no token."""
OPEN_PREFIXES = ("/api/webhooks/",)
"""Paths under /api/ that need no bearer token because they check a signature of their own."""
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})


@dataclass(frozen=True, slots=True)
class ApiOptions:
    max_body_bytes: int = 1024 * 1024
    """Largest request body read; a route may allow less (rule overrides: 16 KB)."""
    docs: Exposure = "public"
    """/docs, /redoc and /openapi.json ("token" suits tools that fetch the OpenAPI document)."""
    metrics: Exposure = "public"


def create_api(context: ApiContext, options: ApiOptions | None = None) -> FastAPI:
    options = options or ApiOptions()
    docs = options.docs != "off"
    token_paths = (DOCS_PATHS if options.docs == "token" else frozenset()) | (
        {metrics.METRICS_PATH} if options.metrics == "token" else frozenset()
    )
    api = FastAPI(
        title="Care gateway",
        summary="Remote monitoring of elders' homes: households, devices, alerts.",
        version="0.1.0",
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
        middleware=[
            Middleware(InternalErrors),
            Middleware(
                BearerGate,
                context=context,
                open_paths=OPEN_PATHS,
                open_prefixes=OPEN_PREFIXES,
                token_paths=token_paths,
            ),
        ],
        exception_handlers={RequestValidationError: validation_failed},
    )
    api.state.context = context
    routers = [
        health,
        households,
        series,
        household_settings,
        away,
        situation,
        visits,
        visit_exports,
        care_services,
        ledger,
        visitors,
        alerts,
        overview,
        dead_letters,
        reports,
        coverage,
        accounts,
        audit,
        webhooks,
        ack_links,
        warnings,
        me,
        live,
    ]
    if options.metrics != "off":
        routers.append(metrics)
    # Limits apply as a body is received: one announced larger is refused before it is read,
    # one streamed (chunked) is cut at the limit. Only routes read bodies, and all are here.
    for module in routers:
        api.include_router(module.router, max_body_size=options.max_body_bytes)
    api.include_router(dashboard.router)
    api.mount("/static", StaticFiles(directory=dashboard.STATIC), name="static")
    return api
