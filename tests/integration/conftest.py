"""Fixtures for tests that talk to real servers on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.twilio import FakeTwilio


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    """A fake Twilio REST API on a free loopback port, stopped after the test."""
    with FakeTwilio() as fake:
        yield fake
