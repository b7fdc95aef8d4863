"""The audit log as the kernel and the tenants domain reach it: a port. The compliance domain owns the
log (hash chain, checkpoints, export, verification) and provides the append through its plugin; a
caller here never imports compliance (the import contracts keep the kernel and ``tenants`` free of it).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from control_plane import plugins


async def append_audit_entry(session: AsyncSession, **entry: Any) -> Any:
    """Append one entry in the caller's transaction (``stream``, ``actor``, ``action``, ``target``,
    ``data``, …: see ``compliance.service.append_audit_entry``)."""
    return await plugins.audit_log()(session, **entry)
