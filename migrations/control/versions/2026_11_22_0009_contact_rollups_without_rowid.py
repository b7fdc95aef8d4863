"""Contact rollups clustered on their key on SQLite (WITHOUT ROWID).

The SLA report and the invoices read a tenant's month of rollups by primary-key range; on a rowid
table each row found in the key index is then looked up again in the table. ``WITHOUT ROWID``
stores the rows in key order (one b-tree, read once; upserts write one b-tree). PostgreSQL is
unchanged.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "contact_rollups"
KEY = ("tenant_id", "basis", "day", "channel", "intent", "language", "resolution")
BUCKETS = 14
MEASURES = (
    "contacts",
    "rated",
    "csat_sum",
    "csat_good",
    "handoffs",
    "first_responses",
    "first_response_seconds",
    "resolutions",
    "resolution_seconds",
    *(f"frt_b{i:02d}" for i in range(BUCKETS)),
    *(f"res_b{i:02d}" for i in range(BUCKETS)),
)


def _rebuild(*, with_rowid: bool) -> None:
    """Copy the table into a new one with or without a rowid (SQLite only)."""
    op.create_table(
        f"_{TABLE}_new",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("basis", sa.String(length=10), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("intent", sa.String(length=40), nullable=False),
        sa.Column("language", sa.String(length=35), nullable=False),
        sa.Column("resolution", sa.String(length=20), nullable=False),
        *(sa.Column(m, sa.BigInteger(), server_default="0", nullable=False) for m in MEASURES),
        sa.PrimaryKeyConstraint(*KEY, name=f"pk_{TABLE}"),
        sqlite_with_rowid=with_rowid,
    )
    columns = ", ".join((*KEY, *MEASURES))
    op.execute(
        f"INSERT INTO _{TABLE}_new ({columns}) SELECT {columns} FROM {TABLE} ORDER BY {', '.join(KEY)}"  # noqa: S608
    )
    op.drop_table(TABLE)
    op.rename_table(f"_{TABLE}_new", TABLE)


def upgrade() -> None:
    """Upgrade schema."""
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(with_rowid=False)


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(with_rowid=True)
