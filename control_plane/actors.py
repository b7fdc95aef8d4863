"""Who acts: the shape of an actor (a signed-in user, a bearer token, an API key, the system), as
every audit entry names one. The kernel and every domain use these; the audit log is written by
the compliance domain (``compliance.service.append_audit_entry``, reached from the kernel through
``control_plane.plugins.audit_log``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class Actor(Protocol):
    """Who acts: a signed-in user, a bearer token, an API key or the system."""

    @property
    def actor(self) -> str: ...

    @property
    def role(self) -> str: ...


@dataclass(frozen=True)
class SystemActor:
    actor: str = "system"
    role: str = "system"


SYSTEM = SystemActor()
