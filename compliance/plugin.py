"""The compliance domain as the app sees it: audit, data-subject request and record routes, the
checkpoint and retention jobs, the ``audit`` commands."""

from __future__ import annotations

from compliance import jobs
from compliance.cli import audit
from compliance.controllers import ROUTES
from control_plane.plugins import Domain

DOMAIN = Domain(
    "compliance",
    routes=ROUTES,
    jobs={"audit_checkpoints": (900, jobs.audit_checkpoints), "retention_purge": (3600, jobs.retention_purge)},
    commands=[audit],
)
