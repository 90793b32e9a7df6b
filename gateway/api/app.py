"""The FastAPI application: one router per resource, state handed in by the composition root."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.middleware import Middleware

from gateway.api.context import ApiContext
from gateway.api.errors import InternalErrors, validation_failed
from gateway.api.gate import BearerGate
from gateway.api.routers import alerts, dead_letters, health, household_settings, households

OPEN_PATHS = frozenset({"/api/health"})
"""Paths under /api/ that need no token."""


@dataclass(frozen=True, slots=True)
class ApiOptions:
    max_body_bytes: int = 1024 * 1024
    """Largest request body read; a route may allow less (rule overrides: 16 KB)."""


def create_api(context: ApiContext, options: ApiOptions | None = None) -> FastAPI:
    options = options or ApiOptions()
    api = FastAPI(
        title="Care gateway",
        summary="Remote monitoring of elders' homes: households, devices, alerts.",
        version="0.1.0",
        middleware=[
            Middleware(InternalErrors),
            Middleware(BearerGate, context=context, open_paths=OPEN_PATHS),
        ],
        exception_handlers={RequestValidationError: validation_failed},
    )
    api.state.context = context
    # Limits apply as a body is received: one announced larger is refused before it is read,
    # one streamed (chunked) is cut at the limit. Only routes read bodies, and all are here.
    for router in (
        health.router,
        households.router,
        household_settings.router,
        alerts.router,
        dead_letters.router,
    ):
        api.include_router(router, max_body_size=options.max_body_bytes)
    return api
