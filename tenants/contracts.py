"""Contract defaults, defined once (DESIGN.md, "Billing semantics" and "Contract shape").

The contract schema fills them in when a version omits them; the rules that read terms (SLA
evaluation, the settling of a billing period) fall back to them for terms stored before a term
existed.
"""

from __future__ import annotations

from tenants.vocabulary import Intent

DEFAULT_REOPEN_WINDOW_HOURS = 72  # a contact is settled this long after its resolved_at
DEFAULT_LATE_GRACE_HOURS = 24  # a period is drafted this long after every contact of it can have settled
DEFAULT_CSAT_MIN_SAMPLE = 100  # fewer ratings: "insufficient sample", never a CSAT breach
DEFAULT_DEFLECTION_EXCLUSIONS: frozenset[str] = frozenset({Intent.chargeback.value, Intent.fraud.value})
