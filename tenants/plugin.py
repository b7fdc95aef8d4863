"""The tenants domain as the app sees it: its routes (tenants, contracts, residency, integrations, keys)."""

from __future__ import annotations

from control_plane.plugins import Domain
from tenants.controllers import ROUTES

DOMAIN = Domain("tenants", routes=ROUTES)
