"""Metering tables.

Cell tables (:class:`CellBase`, one database per region) hold contact records, the rollup deltas
that a cell owes the control database, and raw helpdesk webhook events (customer identifiers
already pseudonymised). Control tables (:class:`ControlBase`) hold rollups, the receipts of the
deltas applied to them and the latest ingest errors: counts only, never a contact row.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.database import CellBase, ControlBase

# Upper bounds (seconds, inclusive) of the duration histogram buckets; a last bucket takes the rest.
# Common SLA limits (60 s chat, 4 h e-mail, 24 h) are bounds, so "within the limit" counts are exact.
HISTOGRAM_BOUNDS: tuple[int, ...] = (30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400, 259200)
BUCKETS = len(HISTOGRAM_BOUNDS) + 1

# The measures of one rollup row, in the order of a delta vector.
MEASURES: tuple[str, ...] = (
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
    "reopened",  # contacts that came back after being resolved (open again, or resolved again later)
)
DIMENSIONS: tuple[str, ...] = ("basis", "day", "channel", "intent", "language", "resolution")


class Contact(CellBase):
    """One customer contact, latest version only (``updated_at`` orders versions)."""

    __tablename__ = "contacts"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "external_id"),
        sa.Index("ix_contacts_tenant_resolved", "tenant_id", "resolved_at"),
        sa.Index("ix_contacts_tenant_customer", "tenant_id", "customer_hash"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    external_id: Mapped[str] = mapped_column(sa.String(200))
    channel: Mapped[str] = mapped_column(sa.String(20))
    language: Mapped[str] = mapped_column(sa.String(35))
    market: Mapped[str] = mapped_column(sa.String(2))
    intent: Mapped[str] = mapped_column(sa.String(40))
    opened_at: Mapped[datetime]
    first_response_at: Mapped[datetime | None]
    handoff_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    resolution: Mapped[str] = mapped_column(sa.String(20))
    csat: Mapped[int | None] = mapped_column(sa.SmallInteger)
    customer_hash: Mapped[str | None] = mapped_column(sa.String(64))
    updated_at: Mapped[datetime]
    received_at: Mapped[datetime]
    # 1 when reopened (DESIGN.md: "a reopened contact arrives as an update"): some version was
    # resolved, and the newest is not resolved at the earliest resolution (see cell_writes.reopened).
    reopens: Mapped[int] = mapped_column(sa.SmallInteger, default=0, server_default="0")
    # The earliest resolved_at of every version received (stale ones too): a minimum, so it does not
    # depend on the order in which the versions arrived (cell revision c0004).
    first_resolved_at: Mapped[datetime | None]


class ContactKey(CellBase):
    """One row per stored contact: ``(tenant_id, external_id)`` unique across the monthly partitions of
    ``contacts`` on PostgreSQL, whose own unique index must hold ``opened_at`` (the partition key).

    Ingest copies a batch's new keys before its contacts, so two batches storing one new contact clash
    here whatever its ``opened_at`` (the later one waits, then fails and runs again as an update), and
    its probe for stored versions reads this one index instead of every partition's
    (`billing.metering.contact_keys`). Whoever deletes contacts deletes their keys. SQLite keeps one
    ``contacts`` table with a unique ``(tenant_id, external_id)``: there this table stays empty.
    """

    __tablename__ = "contact_keys"

    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    external_id: Mapped[str] = mapped_column(sa.String(200), primary_key=True)


class RollupDelta(CellBase):
    """Counts a cell owes the control database, written in the same transaction as the contacts.

    Applied to the control database under a receipt (exactly once), then deleted; one left behind
    (the control database was down) is applied by ``bpoctl rollups apply-pending`` or a rebuild.
    """

    __tablename__ = "rollup_deltas"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, index=True)
    timezone: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime]
    deltas: Mapped[list[Any]] = mapped_column(sa.JSON)


class WebhookEvent(CellBase):
    """A verified helpdesk delivery, stored by its id before it is mapped to a contact (replayable)."""

    __tablename__ = "webhook_events"
    __table_args__ = (sa.UniqueConstraint("integration_id", "delivery_id"),)

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, index=True)
    integration_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    source: Mapped[str] = mapped_column(sa.String(20))
    delivery_id: Mapped[str] = mapped_column(sa.String(200))
    event_type: Mapped[str] = mapped_column(sa.String(100))
    # The payload with customer identifiers replaced by their HMAC and free text dropped.
    payload: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    received_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(sa.String(20))  # received | mapped | failed
    error: Mapped[str | None] = mapped_column(sa.Text)
    processed_at: Mapped[datetime | None]


class ContactRollup(ControlBase):
    """Counts and sums of one tenant x basis x day x channel x intent x language x resolution.

    ``basis`` says which moment places a contact on its ``day`` (in the tenant's time zone):
    ``opened`` (every contact, by ``opened_at``) or ``resolved`` (contacts with a ``resolved_at``,
    by it). Billing and SLA read the ``resolved`` rows; response targets and usage the ``opened`` ones.
    """

    __tablename__ = "contact_rollups"
    __table_args__ = {"sqlite_with_rowid": False}  # rows in key order on SQLite (migration 0009)

    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    basis: Mapped[str] = mapped_column(sa.String(10), primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    channel: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    intent: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    language: Mapped[str] = mapped_column(sa.String(35), primary_key=True)
    resolution: Mapped[str] = mapped_column(sa.String(20), primary_key=True)


# One integer column per measure (declarative maps a column set on the class after its body).
for _name in MEASURES:
    setattr(ContactRollup, _name, sa.Column(_name, sa.BigInteger, nullable=False, server_default="0"))


# The measures the month totals keep: what the invoice run reads (contacts, rated, satisfied).
MONTH_MEASURES: tuple[str, ...] = ("contacts", "rated", "csat_good")
MONTH_DIMENSIONS: tuple[str, ...] = ("basis", "month", "channel", "intent", "language", "resolution")


class ContactRollupMonth(ControlBase):
    """:class:`ContactRollup` rows summed per tenant-local calendar month (``month`` = its first day),
    only the `MONTH_MEASURES`. Written with the daily rows, in the same transaction
    (``rollups.add_to_rollups``, ``rollups.rebuild``), so a month row always equals the sum of the
    month's daily rows; the invoice run reads these instead of a month of daily rows
    (``batch_counts.many_period_counts``); ``bpoctl rollups rebuild --check`` compares them."""

    __tablename__ = "contact_rollup_months"
    __table_args__ = {"sqlite_with_rowid": False}

    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    basis: Mapped[str] = mapped_column(sa.String(10), primary_key=True)
    month: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    channel: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    intent: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    language: Mapped[str] = mapped_column(sa.String(35), primary_key=True)
    resolution: Mapped[str] = mapped_column(sa.String(20), primary_key=True)


for _name in MONTH_MEASURES:
    setattr(ContactRollupMonth, _name, sa.Column(_name, sa.BigInteger, nullable=False, server_default="0"))


class RollupReceipt(ControlBase):
    """A rollup delta applied to :class:`ContactRollup`: its id makes applying it idempotent."""

    __tablename__ = "rollup_receipts"

    delta_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, index=True)
    region: Mapped[str] = mapped_column(sa.String(20))
    applied_at: Mapped[datetime]


class IngestError(ControlBase):
    """A rejected contact of a batch (field and reason; never a submitted value) for the usage page."""

    __tablename__ = "ingest_errors"
    __table_args__ = (sa.Index("ix_ingest_errors_tenant_received", "tenant_id", "received_at"),)

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    received_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(sa.String(20))
    item_index: Mapped[int]
    external_id: Mapped[str | None] = mapped_column(sa.String(200))
    field: Mapped[str] = mapped_column(sa.String(60))
    message: Mapped[str] = mapped_column(sa.String(300))


class FirstResponseRollup(ControlBase):
    """Contacts by opened day (tenant's zone), channel, clock and exact whole seconds to first response.

    ``clock`` is ``calendar`` (wall time) or ``business`` (inside the tenant's support calendar);
    see ``billing.metering.response_rollups``, which writes and reads these rows.
    """

    __tablename__ = "first_response_rollups"
    # On SQLite the rows live in key order with their count (WITHOUT ROWID); the index serves the
    # month's distribution in seconds order without reading the table (migration 0008).
    __table_args__ = (
        sa.Index("ix_first_response_rollups_tenant_clock_seconds", "tenant_id", "clock", "seconds", "day", "contacts"),
        {"sqlite_with_rowid": False},
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    clock: Mapped[str] = mapped_column(sa.String(10), primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    channel: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    seconds: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    contacts: Mapped[int] = mapped_column(sa.BigInteger)
