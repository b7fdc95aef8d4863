"""Tenant placement: the cell of a region that holds a tenant's contacts (regions with several cells).

Revision ID: 0019_tenant_cells
Revises: 0018_instances
Create Date: 2026-11-30

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0019_tenant_cells"
down_revision: str | Sequence[str] | None = "0018_instances"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tenant_cells",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("region", sa.String(length=20), nullable=False),
        sa.Column("cell", sa.String(length=40), nullable=False),
        sa.Column("placed_at", TS, nullable=False),
        sa.Column("moved_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_tenant_cells_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("tenant_id", "region", name=op.f("pk_tenant_cells")),
    )
    op.create_index(op.f("ix_tenant_cells_cell"), "tenant_cells", ["cell"])


def downgrade() -> None:
    op.drop_index(op.f("ix_tenant_cells_cell"), table_name="tenant_cells")
    op.drop_table("tenant_cells")
