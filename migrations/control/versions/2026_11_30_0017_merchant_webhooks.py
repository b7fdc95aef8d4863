"""Merchant webhooks: endpoints, deliveries, usage thresholds and their hits. The SLA alert webhook of
each tenant becomes an endpoint subscribed to sla.at_risk and sla.breached (its sealed secret kept, as
``signing = 'sla_legacy'``), and its table goes.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30

"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
SLA_EVENTS = ["sla.at_risk", "sla.breached"]


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{table}_tenant_id_tenants"))


def upgrade() -> None:
    endpoints = op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("signing", sa.String(length=20), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.String(length=500), nullable=True),
        sa.Column("disabled_at", TS, nullable=True),
        sa.Column("last_success_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        _tenant_fk("webhook_endpoints"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    op.create_index("ix_webhook_endpoints_tenant", "webhook_endpoints", ["tenant_id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("endpoint_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("message_id", sa.String(length=100), nullable=False),
        sa.Column("event_type", sa.String(length=60), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("attempt_log", sa.JSON(), nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("next_attempt_at", TS, nullable=True),
        sa.Column("replay_of", sa.Uuid(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_webhook_deliveries_endpoint_id_webhook_endpoints"),
            ondelete="CASCADE",
        ),
        _tenant_fk("webhook_deliveries"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint("key", name=op.f("uq_webhook_deliveries_key")),
    )
    op.create_index("ix_webhook_deliveries_endpoint_created", "webhook_deliveries", ["endpoint_id", "created_at"])
    op.create_table(
        "usage_thresholds",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("metric", sa.String(length=20), nullable=False),
        sa.Column("value", sa.String(length=40), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        _tenant_fk("usage_thresholds"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_thresholds")),
        sa.UniqueConstraint("tenant_id", "metric", "value", name=op.f("uq_usage_thresholds_tenant_id_metric_value")),
    )
    op.create_table(
        "usage_threshold_hits",
        sa.Column("threshold_id", sa.Uuid(), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("observed", sa.String(length=40), nullable=False),
        sa.Column("fired_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["threshold_id"],
            ["usage_thresholds.id"],
            name=op.f("fk_usage_threshold_hits_threshold_id_usage_thresholds"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("threshold_id", "period", name=op.f("pk_usage_threshold_hits")),
    )

    # Each SLA alert webhook becomes an endpoint for SLA alerts, signed as before (the same secret).
    old = sa.table(
        "sla_alert_webhooks",
        sa.column("tenant_id", sa.Uuid()),
        sa.column("url", sa.String()),
        sa.column("secret", sa.Text()),
        sa.column("active", sa.Boolean()),
        sa.column("updated_at", TS),
        sa.column("updated_by", sa.String()),
    )
    rows = op.get_bind().execute(sa.select(old)).mappings().all()
    if rows:
        op.bulk_insert(
            endpoints,
            [
                {
                    "id": uuid.uuid4(), "tenant_id": r["tenant_id"], "url": r["url"],
                    "description": "SLA alerts (moved from the SLA settings)", "events": SLA_EVENTS,
                    "secret": r["secret"], "signing": "sla_legacy", "enabled": r["active"], "disabled_reason": None,
                    "disabled_at": None, "last_success_at": None, "created_at": r["updated_at"],
                    "created_by": r["updated_by"], "updated_at": r["updated_at"],
                }  # fmt: skip
                for r in rows
            ],
        )
    op.drop_table("sla_alert_webhooks")


def downgrade() -> None:
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
    ep = sa.table(
        "webhook_endpoints",
        sa.column("tenant_id", sa.Uuid()),
        sa.column("url", sa.String()),
        sa.column("secret", sa.Text()),
        sa.column("enabled", sa.Boolean()),
        sa.column("signing", sa.String()),
        sa.column("updated_at", TS),
        sa.column("created_by", sa.String()),
    )
    legacy = op.get_bind().execute(sa.select(ep).where(ep.c.signing == "sla_legacy")).mappings().all()
    seen: set = set()
    back = []
    for r in legacy:  # one per tenant, as the old table held
        if r["tenant_id"] not in seen:
            seen.add(r["tenant_id"])
            back.append({"tenant_id": r["tenant_id"], "url": r["url"], "secret": r["secret"], "active": r["enabled"],
                         "updated_at": r["updated_at"], "updated_by": r["created_by"]})  # fmt: skip
    if back:
        op.bulk_insert(sa.table("sla_alert_webhooks", *(sa.column(k) for k in back[0])), back)
    op.drop_table("usage_threshold_hits")
    op.drop_table("usage_thresholds")
    op.drop_index("ix_webhook_deliveries_endpoint_created", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_index("ix_webhook_endpoints_tenant", table_name="webhook_endpoints")
    op.drop_table("webhook_endpoints")
