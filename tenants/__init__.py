"""Tenants: merchants and their lifecycle, versioned contracts, residency policy, integrations, API keys.

Account managers onboard a tenant through these services (API and pages); every change appends an
audit entry to the tenant's stream. The region registry lives in settings; ``residency`` holds the
rules that route a market to a region cell and refuse cross-border moves without a mechanism.
"""
