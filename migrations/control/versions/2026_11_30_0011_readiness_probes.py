"""A one-row-per-host table that `/ready` rewrites: proof that the database takes writes.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "readiness_probes",
        sa.Column("instance", sa.String(length=100), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("instance", name=op.f("pk_readiness_probes")),
    )


def downgrade() -> None:
    op.drop_table("readiness_probes")
