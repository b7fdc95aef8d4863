"""E-mail: queued in the caller's transaction as outbox rows of kind ``mail`` (one per recipient),
rendered and sent after commit by the mail handler.

`queue_mail` is the only way any domain sends a message: ``template`` names a pair of Jinja2
templates ``mail/<template>.txt`` and ``mail/<template>.html`` found in any domain's templates
folder, rendered with ``context`` (JSON values only) in ``locale``; ``attachments`` are references
``{"kind": ..., "ref": ...}`` that a domain resolves when the message is sent
(``Domain.mail_attachments``), so the outbox row never holds a document.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.models import OutboxMessage
from control_plane.outbox import enqueue

MAIL_KIND = "mail"


async def queue_mail(
    session: AsyncSession,
    *,
    to: Sequence[str],
    template: str,
    context: dict[str, Any],
    key: str,
    locale: str = "en",
    attachments: Sequence[dict[str, str]] = (),
    tenant_id: str | None = None,
    now: datetime | None = None,
) -> list[OutboxMessage]:
    """One outbox row per distinct recipient, each with a stable idempotency key derived from ``key``
    (the fact the message reports, e.g. ``invoice.finalized:<id>``): queuing it again adds nothing."""
    rows = []
    for address in dict.fromkeys(a.strip().lower() for a in to if a and a.strip()):
        digest = hashlib.sha256(f"{key}|{address}".encode()).hexdigest()[:32]
        payload = {
            "to": address,
            "template": template,
            "context": context,
            "locale": locale,
            "attachments": [dict(a) for a in attachments],
            "tenant_id": tenant_id,
            "key": key,
        }
        rows.append(await enqueue(session, kind=MAIL_KIND, payload=payload, idempotency_key=f"mail:{digest}", now=now))
    return rows
