"""First-response rollups: clustered on their key on SQLite, and a covering index in seconds order.

The SLA report reads the exact first-response distribution of a month (``GROUP BY seconds``) and the
contacts within each target's limit per day. On SQLite the table becomes ``WITHOUT ROWID`` (rows
stored in primary-key order with ``contacts``: no second lookup per row), and the index
``(tenant_id, clock, seconds, day, contacts)`` gives the distribution without a sort or a table
read. PostgreSQL keeps its heap table and gets the same index.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "first_response_rollups"
INDEX = "ix_first_response_rollups_tenant_clock_seconds"
COLUMNS = "tenant_id, clock, day, channel, seconds, contacts"


def _rebuild(*, with_rowid: bool) -> None:
    """Copy the table into a new one with or without a rowid (SQLite only)."""
    op.create_table(
        f"_{TABLE}_new",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("clock", sa.String(length=10), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("seconds", sa.BigInteger(), nullable=False),
        sa.Column("contacts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "clock", "day", "channel", "seconds", name=f"pk_{TABLE}"),
        sqlite_with_rowid=with_rowid,
    )
    op.execute(
        f"INSERT INTO _{TABLE}_new ({COLUMNS}) SELECT {COLUMNS} FROM {TABLE} "  # noqa: S608
        "ORDER BY tenant_id, clock, day, channel, seconds"
    )
    op.drop_table(TABLE)
    op.rename_table(f"_{TABLE}_new", TABLE)


def upgrade() -> None:
    """Upgrade schema."""
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(with_rowid=False)
    op.create_index(INDEX, TABLE, ["tenant_id", "clock", "seconds", "day", "contacts"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(INDEX, table_name=TABLE)
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(with_rowid=True)
