"""Webhook fixtures: a receiver on loopback, a controlled clock for attempts, and the billing fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest

from tests.billing.conftest import ingest_tenant  # noqa: F401  (fixture re-exported)
from tests.billing.invoices.conftest import frozen  # noqa: F401  (fixture re-exported)
from tests.fakes.webhook_receiver import WebhookReceiver
from webhooks import delivery


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def clock(monkeypatch) -> list[datetime]:
    """The clock of delivery attempts: tests set ``clock[0]``."""
    moment: list[datetime] = []
    monkeypatch.setattr(delivery, "now", lambda: moment[0])
    return moment
