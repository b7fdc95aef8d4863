"""Periodic jobs: what a job receives (`JobContext`) and how a domain declares one (`periodic`).

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
# name -> (seconds between runs, job). Domains add theirs here.
JOBS: dict[str, tuple[int, Job]] = {}


def periodic(name: str, seconds: int) -> Callable[[Job], Job]:
    def register(fn: Job) -> Job:
        JOBS[name] = (seconds, fn)
        return fn

    return register
