"""A merchant's webhook receiver on loopback: records each request (path, headers, body) and answers
``status`` (200 unless a test sets another, e.g. 500 for an endpoint that keeps failing)."""

from __future__ import annotations

from dataclasses import dataclass

from tests.fakes.http import FakeServer


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class WebhookReceiver(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.status = 200
        self.received: list[Received] = []

    def route(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes):
        self.received.append(Received(path, headers, body))
        return self.status, {"ok": self.status < 300}
