"""Compliance: the tamper-evident audit log, residency rules per regime, data-subject requests, retention.

Every change in any domain calls :func:`compliance.service.append_audit_entry` inside the same
transaction as the change, so the audit log and the data never disagree.
"""
