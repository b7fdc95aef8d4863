"""A worker process for the kill test: one dispatch of the due ``mail`` outbox rows with the real
handlers (``python -m tests.fakes.mail_worker``, settings from the ``BPO_*`` environment)."""

from __future__ import annotations

import asyncio

from control_plane.database import Databases
from control_plane.keystore import load_keyring_sync
from control_plane.outbox import dispatch_due
from control_plane.periodic import JobContext
from control_plane.plugins import outbox_handlers
from control_plane.settings import load_settings


async def main() -> None:
    settings = load_settings()
    db = Databases(settings.database)
    try:
        ctx = JobContext(settings, db, load_keyring_sync(settings))
        print(await dispatch_due(db, outbox_handlers(ctx), kinds={"mail"}), flush=True)
    finally:
        await db.dispose()


if __name__ == "__main__":
    asyncio.run(main())
