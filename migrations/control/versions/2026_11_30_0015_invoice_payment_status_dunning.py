"""The payment state of finalized invoices (open, paid, payment_failed, overdue, uncollectible) and
the dunning steps taken for each invoice (reminders, overdue, suspension), once each.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("payment_status", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("payment_status_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_invoices_payment_status"), ["payment_status"], unique=False)
    # Invoices finalized before this revision are open (awaiting payment); paid ones are paid.
    op.execute("UPDATE invoices SET payment_status = 'open', payment_status_at = finalized_at WHERE status = 'finalized'")
    op.execute("UPDATE invoices SET payment_status = 'paid', payment_status_at = paid_at WHERE status = 'paid'")
    op.create_table(
        "invoice_dunning_steps",
        sa.Column("invoice_id", sa.Uuid(), nullable=False),
        sa.Column("step", sa.String(length=40), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_invoice_dunning_steps_invoice_id_invoices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("invoice_id", "step", name=op.f("pk_invoice_dunning_steps")),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("invoice_dunning_steps")
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invoices_payment_status"))
        batch_op.drop_column("payment_status_at")
        batch_op.drop_column("payment_status")
