"""Periodic jobs: what a job receives (`JobContext`); domains declare theirs in their plugin.

A leaf of the kernel: domains and the outbox handlers import it without importing the scheduler
that runs the jobs (`control_plane.scheduler`), so no import cycle passes through the scheduler.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from control_plane.database import Databases
from control_plane.keyring import KeyRing
from control_plane.settings import Settings


@dataclass
class JobContext:
    settings: Settings
    db: Databases
    keyring: KeyRing


Job = Callable[[JobContext], Awaitable[object]]
