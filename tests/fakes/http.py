"""A small threaded HTTP server on loopback with switchable failure modes (500, 429, timeout).

``server.fail("500", "429", "timeout")`` queues failures for the next requests, one each. A
"timeout" does the work and then answers too late for the client (its response is lost): the
nastiest case, since a retry must not do the work twice.

``server.down = True`` is an outage: every request is answered 503 until it is set back.
``server.stall("POST", "/v1/refunds/")`` makes the next such request do its work and then hold its
answer until ``server.release.set()``; ``server.stalled`` is set once the work is done (a test can
kill the client process then: the provider has acted, the client never learns it).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

Route = Callable[[str, str, dict[str, str], dict[str, str], bytes], tuple[int, Any]]


class FakeServer:
    late_seconds = 1.5  # how late a "timeout" answers; clients in tests wait 0.5 s

    def __init__(self) -> None:
        self.failures: list[str] = []
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.down = False
        self.stall_on: tuple[str, str] | None = None
        self.stalled = threading.Event()
        self.release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                query = dict(parse_qsl(parts.query))
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with fake.lock:
                    mode = fake.failures.pop(0) if fake.failures else None
                    fake.requests.append((self.command, parts.path))
                    if fake.down:
                        mode = "503"
                    elif fake.stall_on == (self.command, parts.path):
                        mode, fake.stall_on = "stall", None
                if mode == "503":
                    return self._send(503, {"error": {"message": "service unavailable"}})
                if mode == "500":
                    return self._send(500, {"error": {"message": "internal error"}})
                if mode == "429":
                    return self._send(429, {"error": {"message": "slow down"}}, {"Retry-After": "1"})
                with fake.lock:
                    status, payload = fake.route(self.command, parts.path, query, headers, body)
                if mode == "timeout":
                    threading.Event().wait(fake.late_seconds)
                if mode == "stall":
                    fake.stalled.set()
                    fake.release.wait(60)
                self._send(status, payload)

            def _send(self, status: int, payload: Any, extra: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in (extra or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a "timeout")

            do_GET = do_POST = do_DELETE = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> FakeServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def fail(self, *modes: str) -> None:
        with self.lock:
            self.failures.extend(modes)

    def stall(self, method: str, path: str) -> None:
        with self.lock:
            self.stall_on = (method, path)
            self.stalled.clear()
            self.release.clear()

    def route(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes):
        raise NotImplementedError
