"""Contact rollups count reopened contacts (the SLA report's reopen rate).

Rows written before this revision count none; ``bpoctl rollups rebuild`` recounts them from the
contacts' ``reopens`` (cell revision c0003), which start at 0 for contacts stored before it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN: SQLite allows it on the WITHOUT ROWID table (constant default, not a key).
    op.add_column("contact_rollups", sa.Column("reopened", sa.BigInteger(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("contact_rollups") as batch:
        batch.drop_column("reopened")
