"""Data-subject requests and each tenant's request policy (PIPL deadline days).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "subject_requests",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("regime", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("subject_hash", sa.String(length=64), nullable=True),
        sa.Column("cells", sa.JSON(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("extended_due_on", sa.Date(), nullable=True),
        sa.Column("extension_reason", sa.String(length=500), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_subject_requests_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subject_requests")),
    )
    with op.batch_alter_table("subject_requests", schema=None) as batch_op:
        batch_op.create_index("ix_subject_requests_tenant_received", ["tenant_id", "received_at"], unique=False)

    op.create_table(
        "dsr_policies",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("pipl_days", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_dsr_policies_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_dsr_policies")),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("dsr_policies")
    with op.batch_alter_table("subject_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_subject_requests_tenant_received")
    op.drop_table("subject_requests")
