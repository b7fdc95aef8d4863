"""Issuers with their own number series, billing profiles per tenant, versioned tax rates (seeded
for the demo markets), and the invoice's tax, terms, issuer and bill-to.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30

"""

from collections.abc import Sequence
from datetime import UTC, date, datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RATES = [
    ("DE-VAT-19", "DE", "Umsatzsteuer 19 %", "0.19", date(2007, 1, 1)),
    ("FR-TVA-20", "FR", "TVA 20 %", "0.20", date(2014, 1, 1)),
    ("ES-IVA-21", "ES", "IVA 21 %", "0.21", date(2012, 9, 1)),
    ("NL-BTW-21", "NL", "BTW 21 %", "0.21", date(2012, 10, 1)),
    ("IT-IVA-22", "IT", "IVA 22 %", "0.22", date(2013, 10, 1)),
    ("GB-VAT-20", "GB", "VAT 20 %", "0.20", date(2011, 1, 4)),
    ("JP-CT-10", "JP", "消費税 10 %", "0.10", date(2019, 10, 1)),
    ("SG-GST-9", "SG", "GST 9 %", "0.09", date(2024, 1, 1)),
    ("CN-VAT-6", "CN", "增值税 6 %", "0.06", date(2016, 5, 1)),
    ("US-0", "US", "No federal sales tax on services", "0", date(2000, 1, 1)),
]


def upgrade() -> None:
    issuers = op.create_table(
        "issuers",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("legal_name", sa.String(length=200), nullable=False),
        sa.Column("address", sa.JSON(), nullable=False),
        sa.Column("tax_registrations", sa.JSON(), nullable=False),
        sa.Column("invoice_prefix", sa.String(length=8), nullable=False),
        sa.Column("credit_note_prefix", sa.String(length=8), nullable=False),
        sa.Column("payment_instructions", sa.String(length=1000), nullable=False),
        sa.Column("regions", sa.JSON(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_issuers")),
        sa.UniqueConstraint("credit_note_prefix", name=op.f("uq_issuers_credit_note_prefix")),
        sa.UniqueConstraint("invoice_prefix", name=op.f("uq_issuers_invoice_prefix")),
    )
    op.create_table(
        "billing_profiles",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("legal_name", sa.String(length=200), nullable=False),
        sa.Column("address", sa.JSON(), nullable=False),
        sa.Column("tax_id", sa.String(length=40), nullable=True),
        sa.Column("billing_emails", sa.JSON(), nullable=False),
        sa.Column("purchase_order", sa.String(length=100), nullable=True),
        sa.Column("locale", sa.String(length=10), nullable=False),
        sa.Column("issuer_code", sa.String(length=40), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["issuer_code"], ["issuers.code"], name=op.f("fk_billing_profiles_issuer_code_issuers")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_billing_profiles_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_billing_profiles")),
    )
    rates = op.create_table(
        "tax_rates",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("rate", sa.Numeric(precision=8, scale=6), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("note", sa.String(length=300), nullable=True),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_tax_rates")),
    )
    with op.batch_alter_table("tax_rates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tax_rates_country"), ["country"], unique=False)
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("net_total_minor", sa.BigInteger(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("tax_total_minor", sa.BigInteger(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("tax_lines", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("issue_date", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("due_date", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("payment_terms_days", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("issuer_code", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("issuer", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("bill_to", sa.JSON(), nullable=True))
    with op.batch_alter_table("credit_notes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tax_minor", sa.BigInteger(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("tax_lines", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("issuer_code", sa.String(length=40), nullable=True))
    # Invoices before this revision had no tax: their net is their total.
    op.execute("UPDATE invoices SET net_total_minor = total_minor")
    now = datetime.now(UTC)
    # The default issuer keeps the existing series (INV-YYYY, CN-YYYY) and bills every region until
    # staff add issuers; its details are edited on the issuers page.
    op.bulk_insert(
        issuers,
        [
            {
                "code": "default", "legal_name": "BPO Operations Ltd",
                "address": {"lines": ["1 Example Street"], "postal_code": "10115", "city": "Berlin", "country": "DE"},
                "tax_registrations": [{"country": "DE", "tax_id": "DE136695976"}],
                "invoice_prefix": "INV", "credit_note_prefix": "CN",
                "payment_instructions": "Bank transfer; quote the invoice number.",
                "regions": [], "is_default": True, "created_at": now, "updated_at": now,
            }
        ],
    )  # fmt: skip
    op.bulk_insert(
        rates,
        [
            {"code": c, "country": cc, "name": n, "rate": r, "valid_from": f, "valid_to": None, "note": None}
            for c, cc, n, r, f in RATES
        ],
    )


def downgrade() -> None:
    with op.batch_alter_table("credit_notes", schema=None) as batch_op:
        batch_op.drop_column("issuer_code")
        batch_op.drop_column("tax_lines")
        batch_op.drop_column("tax_minor")
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        for column in ("bill_to", "issuer", "issuer_code", "payment_terms_days", "due_date", "issue_date",
                       "tax_lines", "tax_total_minor", "net_total_minor"):  # fmt: skip
            batch_op.drop_column(column)
    with op.batch_alter_table("tax_rates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tax_rates_country"))
    op.drop_table("tax_rates")
    op.drop_table("billing_profiles")
    op.drop_table("issuers")
