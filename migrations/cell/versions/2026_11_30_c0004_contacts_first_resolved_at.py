"""Contacts keep their earliest resolution time; ``reopens`` becomes a 0/1 flag derived from it.

A contact is reopened when some version of it was resolved (``ai_resolved``/``human_resolved``)
and its newest version is not resolved at the earliest such time. The earliest resolution is a
minimum over every version received, stale ones included, so the same versions give the same
answer in any order of arrival (it used to be counted along the versions in arrival order).

Contacts stored before this revision: a resolved one starts from its own ``resolved_at``; one
already counted as reopened starts from its ``opened_at`` (its first resolution time was not
kept), which keeps it reopened.

Revision ID: c0004
Revises: c0003
Create Date: 2026-11-30

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "c0004"
down_revision: str | Sequence[str] | None = "c0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("contacts", sa.Column("first_resolved_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE contacts SET first_resolved_at = CASE WHEN reopens > 0 THEN opened_at "
        "WHEN resolution IN ('ai_resolved', 'human_resolved') THEN resolved_at ELSE NULL END, "
        "reopens = CASE WHEN reopens > 0 THEN 1 ELSE 0 END"
    )


def downgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("first_resolved_at")
