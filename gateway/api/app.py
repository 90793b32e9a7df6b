"""The FastAPI application: one router per resource, state handed in by the composition root."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware import Middleware

from gateway.api.context import ApiContext
from gateway.api.gate import BearerGate
from gateway.api.routers import alerts, dead_letters, health, household_settings, households

OPEN_PATHS = frozenset({"/api/health"})
"""Paths under /api/ that need no token."""


def create_api(context: ApiContext) -> FastAPI:
    api = FastAPI(
        title="Care gateway",
        summary="Remote monitoring of elders' homes: households, devices, alerts.",
        version="0.1.0",
        middleware=[Middleware(BearerGate, context=context, open_paths=OPEN_PATHS)],
    )
    api.state.context = context
    api.include_router(health.router)
    api.include_router(households.router)
    api.include_router(household_settings.router)
    api.include_router(alerts.router)
    api.include_router(dead_letters.router)
    return api
