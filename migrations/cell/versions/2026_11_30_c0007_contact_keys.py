"""``contact_keys``: ``(tenant_id, external_id)`` unique across the monthly partitions of ``contacts``.

PostgreSQL: every stored contact's key is copied in (a contact has one row, so one key). SQLite keeps
one ``contacts`` table with its own unique index; there the table stays empty
(``billing/metering/contact_keys.py``).

Revision ID: c0007_contact_keys
Revises: c0006_partitions
Create Date: 2026-11-30

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "c0007_contact_keys"
down_revision: str | Sequence[str] | None = "c0006_partitions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "contact_keys",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "external_id", name=op.f("pk_contact_keys")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("INSERT INTO contact_keys (tenant_id, external_id) SELECT tenant_id, external_id FROM contacts")


def downgrade() -> None:
    op.drop_table("contact_keys")
