"""Records of processing per tenant (GDPR Art. 30 style), generated from configuration only.

Nothing here is typed in by hand: the record is assembled from the tenant (controller, markets,
retention), its residency policy (cells, regions, regimes, transfer mechanisms), its integrations
(processors and where they process), the key ring and the audit signing keys (security measures).
It renders as JSON (:func:`record_of_processing`), HTML (a template) and PDF (:func:`record_pdf`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from fpdf import FPDF
from sqlalchemy.ext.asyncio import AsyncSession

from compliance.checkpoints import jwks
from compliance.dsr.deadlines import deadline_rules
from compliance.dsr.service import dsr_policy
from control_plane.auth import Principal
from control_plane.database import utcnow
from control_plane.keyring import KeyRing
from tenants import regimes, residency
from tenants import service as tenants
from tenants.catalogue import INTEGRATION_KINDS

PROCESSOR = "the BPO (operator of this control plane)"
PURPOSES = [
    {
        "purpose": "Customer support on the merchant's behalf",
        "description": "AI agents and human agents answer the merchant's customers (order status, returns, refunds).",
        "legal_basis": "performance of the merchant's contract with its customers; processor under the merchant",
    },
    {
        "purpose": "Outcome billing and SLA reporting",
        "description": "Contacts are counted into rollups (counts and sums, no personal data) that rate invoices "
        "and measure deflection, CSAT and response targets.",
        "legal_basis": "contract between the merchant and the BPO",
    },
    {
        "purpose": "Security, audit and data-subject rights",
        "description": "A tamper-evident audit log of every change and sensitive read; access and erasure requests.",
        "legal_basis": "legal obligation (accountability, Art. 5(2) and 30 GDPR; PIPL art. 54; PDPA s. 12)",
    },
]
DATA_SUBJECTS = ["customers of the merchant who contact its support, in the markets listed per region"]
DATA_CATEGORIES = [
    {
        "category": "Contact metadata",
        "fields": "channel, language, market, intent, opened/first response/handoff/resolved times, resolution, CSAT",
        "personal": True,
        "where": "region cells",
    },
    {
        "category": "Pseudonymous customer reference",
        "fields": "HMAC-SHA256 of the e-mail, phone or id under the tenant's own key; never stored raw",
        "personal": True,
        "where": "region cells",
    },
    {
        "category": "Helpdesk webhook events",
        "fields": "event payloads with customer identifiers replaced by their HMAC and free text dropped",
        "personal": True,
        "where": "region cells",
    },
    {
        "category": "Rollups, invoices and SLA results",
        "fields": "counts and sums per tenant, day, channel, intent, language and resolution",
        "personal": False,
        "where": "control database",
    },
]
SPECIAL_CATEGORIES = "none are collected; contact free text is not stored"


async def record_of_processing(
    session: AsyncSession,
    actor: Principal,
    slug: str,
    *,
    regions: Mapping[str, str],
    keyring: KeyRing,
    today: date | None = None,
) -> dict[str, Any]:
    """The tenant's record of processing as JSON-ready data."""

    today = today or utcnow().date()
    tenant = await tenants.find_tenant(session, actor, slug)
    view = await tenants.residency_view(session, tenant, regions)
    integrations = [i for i in await tenants.list_integrations(session, actor, slug) if i.status == "active"]
    keys = (await jwks(session))["keys"]
    policy = await dsr_policy(session, tenant.id)

    cells = [
        {
            "region": region,
            "regime": regions.get(region),
            "markets": markets or ([] if region != tenant.home_region else ["(home region: markets not listed)"]),
            "home": region == tenant.home_region,
        }
        for region, markets in sorted(view.cells.items())
    ]
    processors, transfers = _recipients_and_transfers(view, integrations, regions, today)
    return {
        "generated_at": utcnow().isoformat(timespec="seconds"),
        "tenant": {"slug": tenant.slug, "name": tenant.name, "status": tenant.status},
        "controller": {"name": tenant.name, "role": "controller (the merchant)"},
        "processor": {"name": PROCESSOR, "role": "processor"},
        "purposes": PURPOSES,
        "data_subjects": DATA_SUBJECTS,
        "data_categories": DATA_CATEGORIES,
        "special_categories": SPECIAL_CATEGORIES,
        "regions": cells,
        "recipients": processors,
        "transfers": transfers,
        "retention": {
            "contacts_days": tenant.retention_days,
            "contacts": f"contact rows are purged {tenant.retention_days} days after they were opened "
            "(daily job, per cell, audited with counts)",
            "rollups_and_invoices": "kept: counts only, no personal data; invoices as billing records",
            "audit_log": "kept, append-only (no personal data beyond staff identities)",
        },
        "data_subject_rights": deadline_rules(policy.pipl_days),
        "security_measures": _security_measures(keyring, keys),
    }


def _recipients_and_transfers(
    view: Any, integrations: list[Any], regions: Mapping[str, str], today: date
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The processors (active integrations) and every cross-border transfer, each with the
    mechanism it rests on (or the one it would need); then transfers the residency policy records."""
    processors = []
    transfers = []
    for integ in integrations:
        kind = INTEGRATION_KINDS.get(integ.kind, {})
        crossing = []
        for region, markets in sorted(view.cells.items()):
            regime = regions.get(region)
            if region == integ.processing_region:
                continue
            found = [
                m
                for m in view.transfer_mechanisms
                if m.get("regime") == regime
                and m.get("to_region") == integ.processing_region
                and residency.has_mechanism(
                    [m], regime=regime or "", to_region=integ.processing_region, market=m.get("market"), today=today
                )
            ]
            crossing.append(region)
            transfers.append(
                {
                    "from_region": region,
                    "regime": regime,
                    "markets": markets,
                    "to_region": integ.processing_region,
                    "recipient": integ.name,
                    "mechanism": ", ".join(f"{m['mechanism']} ({m['reference']})" for m in found)
                    or (
                        "none required"
                        if not regimes.export_controlled(regime)
                        else f"required: {regimes.mechanisms_label(regime)}"
                    ),
                    "valid_until": min((str(m["valid_until"]) for m in found if m.get("valid_until")), default=None),
                }
            )
        processors.append(
            {
                "name": integ.name,
                "kind": integ.kind,
                "category": kind.get("category", "other"),
                "processing_region": integ.processing_region,
                "processing_regime": regions.get(integ.processing_region),
                "receives_data_from": sorted(view.cells),
                "cross_border_from": crossing,
            }
        )
    for m in view.transfer_mechanisms:
        if not any(t["regime"] == m.get("regime") and t["to_region"] == m.get("to_region") for t in transfers):
            transfers.append(
                {
                    "from_region": next(iter(regimes.pinned_regions(m.get("market") or "", regions)), None),
                    "regime": m.get("regime"),
                    "markets": [m["market"]] if m.get("market") else [],
                    "to_region": m.get("to_region"),
                    "recipient": "region cell (residency policy)",
                    "mechanism": f"{m.get('mechanism')} ({m.get('reference')})",
                    "valid_until": str(m["valid_until"]) if m.get("valid_until") else None,
                }
            )
    return processors, transfers


def _security_measures(keyring: KeyRing, keys: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [
        {
            "measure": "Encryption of secrets at rest",
            "detail": f"AES-256-GCM under a key ring with key ids; active key {keyring.active}, "
            f"{len(keyring.keys)} key(s) in the ring; rotatable (bpoctl keys rotate)",
        },
        {
            "measure": "Pseudonymisation of customer references",
            "detail": "HMAC-SHA256 under a per-tenant key sealed by the key ring, applied at ingest",
        },
        {
            "measure": "Data residency",
            "detail": "contacts are written only to the cell of their market's region; the control database "
            "receives counts only",
        },
        {
            "measure": "Tamper-evident audit log",
            "detail": "per-stream SHA-256 hash chain, Ed25519-signed checkpoints (keys "
            + ", ".join(f"{k['kid']} ({k['status']})" for k in keys)
            + "), UPDATE and DELETE refused by a trigger",
        },
        {
            "measure": "Access control",
            "detail": "OIDC sign-in for staff, roles, tenant-scoped API keys (hashed), merchants see their own "
            "tenant only, CSRF tokens on forms",
        },
    ]


class _RecordPDF(FPDF):
    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", size=8)
        self.cell(0, 8, f"Record of processing - page {self.page_no()}", align="C")


def _latin1(text: object) -> str:
    # The core PDF fonts are Latin-1: anything else is replaced, never dropped silently.
    return str(text).encode("latin-1", "replace").decode("latin-1")


def record_pdf(record: dict[str, Any]) -> bytes:
    """The record as a PDF (fpdf2, core fonts)."""
    pdf = _RecordPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin

    def heading(text: str) -> None:
        pdf.ln(2)
        pdf.set_font("Helvetica", "B", 12)
        pdf.multi_cell(width, 7, _latin1(text), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=9)

    def line(text: str) -> None:
        pdf.multi_cell(width, 5, _latin1(text), new_x="LMARGIN", new_y="NEXT")

    pdf.set_font("Helvetica", "B", 15)
    line(f"Record of processing: {record['tenant']['name']} ({record['tenant']['slug']})")
    pdf.set_font("Helvetica", size=9)
    line(
        f"Generated {record['generated_at']} from configuration. Controller: {record['controller']['name']}; "
        f"processor: {record['processor']['name']}."
    )
    heading("Purposes")
    for p in record["purposes"]:
        line(f"- {p['purpose']}: {p['description']} Legal basis: {p['legal_basis']}.")
    heading("Data subjects and categories")
    for s in record["data_subjects"]:
        line(f"- Data subjects: {s}")
    for c in record["data_categories"]:
        line(f"- {c['category']} ({'personal' if c['personal'] else 'not personal'}, {c['where']}): {c['fields']}")
    line(f"- Special categories: {record['special_categories']}")
    heading("Regions and regimes")
    for r in record["regions"]:
        line(f"- {r['region']} ({r['regime']}){' home' if r['home'] else ''}: markets {', '.join(r['markets'])}")
    heading("Recipients (processors)")
    for p in record["recipients"] or [{"name": "none", "kind": "", "processing_region": "", "processing_regime": ""}]:
        line(f"- {p['name']} [{p['kind']}] processes in {p['processing_region']} ({p['processing_regime']})")
    heading("Cross-border transfers")
    for t in record["transfers"] or [{"none": True}]:
        if t.get("none"):
            line("- none")
            continue
        line(
            f"- {t['from_region']} ({t['regime']}) -> {t['to_region']} to {t['recipient']}: {t['mechanism']}"
            + (f", valid until {t['valid_until']}" if t.get("valid_until") else "")
        )
    heading("Retention")
    ret = record["retention"]
    for key in ("contacts", "rollups_and_invoices", "audit_log"):
        line(f"- {key.replace('_', ' ')}: {ret[key]}")
    heading("Data-subject request deadlines")
    for rule in record["data_subject_rights"]:
        line(f"- {rule['regime']}: {rule['deadline']}")
    heading("Security measures")
    for m in record["security_measures"]:
        line(f"- {m['measure']}: {m['detail']}")
    return bytes(pdf.output())
