"""Month totals beside the daily contact rollups (``contact_rollup_months``), backfilled from them.

Per tenant x basis x tenant-local month (its first day) x channel x intent x language x resolution,
the measures the invoice run reads (contacts, rated, csat_good). ``rollups.add_to_rollups`` and
``rollups.rebuild`` keep them in the same transaction as the daily rows. WITHOUT ROWID on SQLite
(rows in key order, like ``contact_rollups``).

Revision ID: 0020_rollup_months
Revises: 0019_tenant_cells
Create Date: 2026-11-30

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0020_rollup_months"
down_revision: str | Sequence[str] | None = "0019_tenant_cells"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "contact_rollup_months"
KEY = ("tenant_id", "basis", "month", "channel", "intent", "language", "resolution")
MEASURES = ("contacts", "rated", "csat_good")


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        TABLE,
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("basis", sa.String(length=10), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("intent", sa.String(length=40), nullable=False),
        sa.Column("language", sa.String(length=35), nullable=False),
        sa.Column("resolution", sa.String(length=20), nullable=False),
        *(sa.Column(m, sa.BigInteger(), server_default="0", nullable=False) for m in MEASURES),
        sa.PrimaryKeyConstraint(*KEY, name=op.f(f"pk_{TABLE}")),
        sqlite_with_rowid=False,
    )
    # Backfill: the daily rows summed per month (days are already tenant-local; SQLite stores ISO dates).
    if op.get_bind().dialect.name == "sqlite":
        month = "substr(day, 1, 8) || '01'"
    else:
        month = "day - CAST(EXTRACT(DAY FROM day) AS integer) + 1"
    group = ", ".join(("tenant_id", "basis", month, "channel", "intent", "language", "resolution"))
    sums = ", ".join(f"sum({m})" for m in MEASURES)
    op.execute(
        f"INSERT INTO {TABLE} ({', '.join((*KEY, *MEASURES))}) "  # noqa: S608 (constant names)
        f"SELECT {group}, {sums} FROM contact_rollups GROUP BY {group} "
        f"HAVING {' OR '.join(f'sum({m}) <> 0' for m in MEASURES)}"
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table(TABLE)
