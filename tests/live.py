"""The real thing on loopback, for tests that need redirects between servers: the app under
uvicorn and ``oidc-provider-mock`` (a real OIDC provider from PyPI), each on its own thread.

The sign-in flow bounces a browser between the provider and ``BPO_PUBLIC_URL``, so both must be
reachable over HTTP; an in-process test client cannot follow that. The app started here owns its
own database engines (they belong to uvicorn's event loop, not to the tests' loop).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta

import httpx
import uvicorn
from oidc_provider_mock import User, run_server_in_thread

from control_plane.settings import OIDCSettings, Settings

CALLBACK = "/auth/oidc/callback"


@dataclass(frozen=True)
class Provider:
    issuer: str

    def register_client(self, redirect_uri: str) -> tuple[str, str]:
        """Dynamic client registration (RFC 7591): ``(client_id, client_secret)``."""
        resp = httpx.post(
            f"{self.issuer}/oauth2/clients",
            json={"redirect_uris": [redirect_uri], "token_endpoint_auth_method": "client_secret_post"},
        )
        assert resp.status_code == 201, resp.text
        body = resp.json()
        return body["client_id"], body["client_secret"]

    def set_user(self, sub: str, **claims: object) -> None:
        """The claims the provider asserts when ``sub`` signs in."""
        resp = httpx.put(f"{self.issuer}/users/{sub}", json=claims)
        assert resp.status_code == 204, resp.text


@contextmanager
def oidc_provider(users: tuple[User, ...] = (), max_age: timedelta = timedelta(hours=1)) -> Iterator[Provider]:
    """The provider refuses unregistered clients and authorization requests without a nonce;
    its tokens live ``max_age``."""
    with run_server_in_thread(
        require_client_registration=True, require_nonce=True, user_claims=users, access_token_max_age=max_age
    ) as server:
        yield Provider(issuer=f"http://localhost:{server.server_port}")


@dataclass(frozen=True)
class LiveApp:
    url: str
    settings: Settings
    client_id: str
    client_secret: str


@contextmanager
def serve_app(settings: Settings, provider: Provider | None) -> Iterator[LiveApp]:
    """``create_app`` under uvicorn on a free loopback port, registered with ``provider`` (if any)."""
    from control_plane.app import create_app
    from control_plane.cli import server_config

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    client_id = client_secret = ""
    live = replace(settings, public_url=url)
    if provider is not None:
        client_id, client_secret = provider.register_client(url + CALLBACK)
        oidc = OIDCSettings(issuer=provider.issuer, client_id=client_id, client_secret=client_secret)
        live = replace(live, oidc=oidc)
    server = uvicorn.Server(server_config(create_app(live), "127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the app did not start under uvicorn")
        time.sleep(0.02)
    try:
        yield LiveApp(url=url, settings=live, client_id=client_id, client_secret=client_secret)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
