"""Fixtures for tests that talk to real servers on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.aliyun import FakeAliyunSms
from tests.fakes.robots import FakeRobots
from tests.fakes.twilio import FakeTwilio


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    """A fake Twilio REST API on a free loopback port, stopped after the test."""
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def fake_aliyun() -> Iterator[FakeAliyunSms]:
    """A fake Alibaba Cloud SMS API on a free loopback port, stopped after the test."""
    with FakeAliyunSms() as fake:
        yield fake


@pytest.fixture
def fake_robots() -> Iterator[FakeRobots]:
    """Fake WeCom and DingTalk robot webhooks on a free loopback port, stopped after the test."""
    with FakeRobots() as fake:
        yield fake
