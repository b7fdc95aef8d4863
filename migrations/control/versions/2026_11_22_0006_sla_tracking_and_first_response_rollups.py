"""SLA: support calendars, excluded windows, statuses, alerts, alert webhooks; exact first-response rollups.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{table}_tenant_id_tenants"))


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "first_response_rollups",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("clock", sa.String(length=10), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("seconds", sa.BigInteger(), nullable=False),
        sa.Column("contacts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "clock", "day", "channel", "seconds", name=op.f("pk_first_response_rollups")
        ),
    )
    op.create_table(
        "sla_support_calendars",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("weekly", sa.JSON(), nullable=False),
        sa.Column("holidays", sa.JSON(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        _tenant_fk("sla_support_calendars"),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_sla_support_calendars")),
    )
    op.create_table(
        "sla_excluded_windows",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("withdrawn_at", TS, nullable=True),
        sa.Column("withdrawn_by", sa.String(length=200), nullable=True),
        _tenant_fk("sla_excluded_windows"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_excluded_windows")),
    )
    op.create_index(
        "ix_sla_excluded_windows_tenant_first_day", "sla_excluded_windows", ["tenant_id", "first_day"], unique=False
    )
    op.create_table(
        "sla_statuses",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("sla", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("evaluated_at", TS, nullable=False),
        sa.Column("changed_at", TS, nullable=False),
        _tenant_fk("sla_statuses"),
        sa.PrimaryKeyConstraint("tenant_id", "period", "sla", name=op.f("pk_sla_statuses")),
    )
    op.create_table(
        "sla_alerts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("sla", sa.String(length=40), nullable=False),
        sa.Column("previous_status", sa.String(length=20), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("actual", sa.String(length=40), nullable=True),
        sa.Column("projected", sa.String(length=40), nullable=True),
        sa.Column("target", sa.String(length=40), nullable=False),
        sa.Column("message", sa.String(length=500), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("acknowledged_at", TS, nullable=True),
        sa.Column("acknowledged_by", sa.String(length=200), nullable=True),
        _tenant_fk("sla_alerts"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_alerts")),
    )
    op.create_index("ix_sla_alerts_tenant_created", "sla_alerts", ["tenant_id", "created_at"], unique=False)
    op.create_table(
        "sla_alert_webhooks",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        _tenant_fk("sla_alert_webhooks"),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_sla_alert_webhooks")),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("sla_alert_webhooks")
    op.drop_index("ix_sla_alerts_tenant_created", table_name="sla_alerts")
    op.drop_table("sla_alerts")
    op.drop_table("sla_statuses")
    op.drop_index("ix_sla_excluded_windows_tenant_first_day", table_name="sla_excluded_windows")
    op.drop_table("sla_excluded_windows")
    op.drop_table("sla_support_calendars")
    op.drop_table("first_response_rollups")
