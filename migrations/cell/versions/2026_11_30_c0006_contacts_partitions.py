"""PostgreSQL: ``contacts`` partitioned by RANGE on the UTC month of ``opened_at``; SQLite: nothing.

In one transaction: the table is renamed aside, a partitioned ``contacts`` is made LIKE it (same
columns, defaults and id sequence), with a DEFAULT partition and one partition per month present in
the rows and for the current month and the three next; every row is copied, the old table dropped,
the primary key ``(id, opened_at)``, the unique ``(tenant_id, external_id, opened_at)`` and the
indexes recreated (a unique index of a partitioned table must hold the partition key; ingest keeps a
contact to one row, see ``billing/metering/partitions.py``, which also creates partitions later).

Revision ID: c0006_partitions
Revises: c0005
Create Date: 2026-11-30

"""

from collections.abc import Sequence
from datetime import UTC, date, datetime

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "c0006_partitions"
down_revision: str | Sequence[str] | None = "c0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AHEAD_MONTHS = 3
OLD = "contacts_unpartitioned"


def _next(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _constraints_and_indexes(unique: str, pk: str) -> None:
    op.execute(f"ALTER TABLE contacts ADD CONSTRAINT pk_contacts PRIMARY KEY ({pk})")
    op.execute(f"ALTER TABLE contacts ADD CONSTRAINT {unique}")
    op.execute("CREATE INDEX ix_contacts_tenant_resolved ON contacts (tenant_id, resolved_at)")
    op.execute("CREATE INDEX ix_contacts_tenant_customer ON contacts (tenant_id, customer_hash)")


def _rename_aside() -> None:
    """The old table and its constraints and indexes get other names (index names are per schema)."""
    op.execute(f"ALTER TABLE contacts RENAME TO {OLD}")
    op.execute(f"ALTER TABLE {OLD} RENAME CONSTRAINT pk_contacts TO pk_{OLD}")
    for index in ("ix_contacts_tenant_resolved", "ix_contacts_tenant_customer"):
        op.execute(f"ALTER INDEX {index} RENAME TO {index.replace('contacts', OLD)}")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    _rename_aside()
    op.execute(f"ALTER TABLE {OLD} RENAME CONSTRAINT uq_contacts_tenant_id_external_id TO uq_{OLD}")
    op.execute(f"CREATE TABLE contacts (LIKE {OLD} INCLUDING DEFAULTS) PARTITION BY RANGE (opened_at)")
    op.execute("ALTER SEQUENCE contacts_id_seq OWNED BY contacts.id")  # it would go with the old table
    op.execute("CREATE TABLE contacts_default PARTITION OF contacts DEFAULT")
    present = bind.exec_driver_sql(
        "SELECT DISTINCT CAST(extract(year FROM opened_at AT TIME ZONE 'UTC') AS int), "
        f"CAST(extract(month FROM opened_at AT TIME ZONE 'UTC') AS int) FROM {OLD}"  # noqa: S608
    ).all()
    now = datetime.now(UTC)
    months = {date(y, m, 1) for y, m in present}
    month = date(now.year, now.month, 1)
    for _ in range(AHEAD_MONTHS + 1):
        months.add(month)
        month = _next(month)
    for month in sorted(months):
        end = _next(month)
        op.execute(
            f"CREATE TABLE contacts_p{month.year:04d}_{month.month:02d} PARTITION OF contacts "
            f"FOR VALUES FROM ('{month.isoformat()} 00:00:00+00') TO ('{end.isoformat()} 00:00:00+00')"
        )
    op.execute(f"INSERT INTO contacts SELECT * FROM {OLD}")  # noqa: S608 (LIKE: same columns, same order)
    op.execute(f"DROP TABLE {OLD}")
    _constraints_and_indexes(
        "uq_contacts_tenant_id_external_id_opened_at UNIQUE (tenant_id, external_id, opened_at)", "id, opened_at"
    )


def downgrade() -> None:
    """One table again (a contact stored twice under two ``opened_at`` would make this fail: ingest prevents it)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    _rename_aside()
    op.execute(f"ALTER TABLE {OLD} RENAME CONSTRAINT uq_contacts_tenant_id_external_id_opened_at TO uq_{OLD}")
    op.execute(f"CREATE TABLE contacts (LIKE {OLD} INCLUDING DEFAULTS)")
    op.execute("ALTER SEQUENCE contacts_id_seq OWNED BY contacts.id")
    op.execute(f"INSERT INTO contacts SELECT * FROM {OLD}")  # noqa: S608
    op.execute(f"DROP TABLE {OLD}")  # its partitions go with it
    _constraints_and_indexes("uq_contacts_tenant_id_external_id UNIQUE (tenant_id, external_id)", "id")
