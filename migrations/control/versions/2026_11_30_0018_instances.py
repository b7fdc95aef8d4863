"""Many instances: the key ring (data keys sealed by the master key, a version row) and the shared
sealed secrets (the cookie-session key) move into the control database; ``job_run_counts`` counts
each periodic job's runs across every process. An existing
``keyring.json`` is imported by the first instance that starts (``control_plane.keystore``).

Revision ID: 0018_instances
Revises: 0017
Create Date: 2026-11-30

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0018_instances"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "key_ring",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("active", sa.String(length=40), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_key_ring")),
    )
    op.create_table(
        "key_ring_keys",
        sa.Column("kid", sa.String(length=40), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_key_ring_keys")),
    )
    op.create_table(
        "sealed_secrets",
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_sealed_secrets")),
    )


    op.create_table(
        "job_run_counts",
        sa.Column("job", sa.String(length=60), nullable=False),
        sa.Column("runs", sa.BigInteger(), nullable=False),
        sa.Column("last_run_at", TS, nullable=False),
        sa.Column("last_holder", sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint("job", name=op.f("pk_job_run_counts")),
    )


def downgrade() -> None:
    op.drop_table("job_run_counts")
    op.drop_table("sealed_secrets")
    op.drop_table("key_ring_keys")
    op.drop_table("key_ring")
