"""Webhook receivers (thin): the signature is the credential, so the routes are public."""

from __future__ import annotations

from typing import Any

from litestar import Request, post
from litestar.datastructures import State

from billing.metering.webhooks.service import SOURCES, receive_webhook
from control_plane.auth import policy
from control_plane.errors import NotFound
from control_plane.keyring import KeyRing


@post(
    "/api/v1/webhooks/{source:str}/{integration_id:str}",
    opt=policy(public=True, raw_body=True),
    status_code=200,
    request_max_body_size=1024 * 1024,
    tags=["webhooks"],
)
async def helpdesk_webhook(
    request: Request, state: State, keyring: KeyRing, source: str, integration_id: str
) -> dict[str, Any]:
    """A Gorgias, Zendesk or generic signed delivery for one integration; 401 when unsigned or stale."""
    if source not in SOURCES:
        raise NotFound(f"no webhook receiver {source!r}; there are {', '.join(SOURCES)}")
    body = await request.body()
    headers = {k.lower(): v for k, v in request.headers.items()}
    return await receive_webhook(state.db, keyring, source, integration_id, headers, body)


ROUTES = [helpdesk_webhook]
