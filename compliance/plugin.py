"""The compliance domain as the app sees it: audit, data-subject request and record routes, the
checkpoint and retention jobs, the ``audit`` commands."""

from __future__ import annotations

from compliance import checkpoints, jobs, pages
from compliance.cli import audit
from compliance.controllers import ROUTES
from compliance.dsr import pages as dsr_pages
from compliance.dsr.metrics import dsr_deadlines
from compliance.dsr.schemas import Closing, Extension, PolicyPut, RejectionIn, RequestCreate
from compliance.service import append_audit_entry
from control_plane.auth import STAFF, Role
from control_plane.plugins import Domain, NavLink

OFFICERS = frozenset({Role.compliance_officer, Role.platform_admin})

DOMAIN = Domain(
    "compliance",
    routes=[*ROUTES, *pages.ROUTES, *dsr_pages.ROUTES],
    jobs={
        "audit_checkpoints": (900, jobs.audit_checkpoints),
        "retention_purge": (3600, jobs.retention_purge),
        "subject_request_reminders": (3600, jobs.subject_request_reminders),
        "dsr_due_soon": (3600, jobs.dsr_due_soon),
    },
    commands=[audit],
    metrics=[dsr_deadlines],
    audit_log=append_audit_entry,
    resealers=[checkpoints.reseal_signing_keys],
    key_ids_in_use=[checkpoints.signing_key_ids_in_use],
    key_rotation=[checkpoints.rotate_signing],
    request_bodies={
        "POST /api/v1/tenants/{slug}/subject-requests": RequestCreate,
        "POST /api/v1/tenants/{slug}/subject-requests/{request_id}/extend": Extension,
        "POST /api/v1/tenants/{slug}/subject-requests/{request_id}/complete": Closing,
        "POST /api/v1/tenants/{slug}/subject-requests/{request_id}/reject": RejectionIn,
        "PUT /api/v1/tenants/{slug}/subject-request-policy": PolicyPut,
    },
    answers={"GET /api/v1/audit/export": {"200": ["application/x-ndjson", "text/csv"]}},
    nav=[
        NavLink("compliance", "Compliance", "/compliance", OFFICERS, order=40),
        NavLink("audit", "Audit log", "/compliance/audit", OFFICERS, order=50),
    ],
    tenant_tabs=[
        NavLink("audit", "Audit", "/tenants/{slug}/audit", frozenset({*STAFF, Role.merchant_admin}), order=50),
        NavLink("privacy", "Privacy", "/tenants/{slug}/privacy", frozenset({*STAFF, Role.merchant_admin}), order=60),
    ],
)
