"""Credit notes at the payment provider: which provider, its credit note / refund ids and the outcome.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("credit_notes") as batch:
        batch.add_column(sa.Column("provider", sa.String(20), nullable=True))
        batch.add_column(sa.Column("provider_action", sa.String(20), nullable=True))
        batch.add_column(sa.Column("provider_status", sa.String(30), nullable=True))
        batch.add_column(sa.Column("provider_credit_note_id", sa.String(200), nullable=True))
        batch.add_column(sa.Column("provider_refund_id", sa.String(200), nullable=True))
        batch.add_column(sa.Column("provider_synced_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("credit_notes") as batch:
        for name in ("provider_synced_at", "provider_refund_id", "provider_credit_note_id", "provider_status",
                     "provider_action", "provider"):  # fmt: skip
            batch.drop_column(name)
