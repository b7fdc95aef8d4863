"""Metering in the control database: contact rollups, the receipts of applied cell deltas, ingest errors.

Rollups carry counts and sums only; nothing here identifies a merchant's customer.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0002'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('contact_rollups',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('basis', sa.String(length=10), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('channel', sa.String(length=20), nullable=False),
    sa.Column('intent', sa.String(length=40), nullable=False),
    sa.Column('language', sa.String(length=35), nullable=False),
    sa.Column('resolution', sa.String(length=20), nullable=False),
    sa.Column('contacts', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('rated', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('csat_sum', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('csat_good', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('handoffs', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('first_responses', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('first_response_seconds', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('resolutions', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('resolution_seconds', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('frt_b00', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('frt_b01', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('frt_b02', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('frt_b03', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('frt_b04', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('frt_b05', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('frt_b06', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('frt_b07', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('frt_b08', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('frt_b09', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('frt_b10', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('frt_b11', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('frt_b12', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('frt_b13', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('res_b00', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('res_b01', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('res_b02', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('res_b03', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('res_b04', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('res_b05', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('res_b06', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('res_b07', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('res_b08', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('res_b09', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('res_b10', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('res_b11', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('res_b12', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('res_b13', sa.BigInteger(), server_default='0', nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'basis', 'day', 'channel', 'intent', 'language', 'resolution', name=op.f('pk_contact_rollups'))
    )
    op.create_table('ingest_errors',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('item_index', sa.Integer(), nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=True),
    sa.Column('field', sa.String(length=60), nullable=False),
    sa.Column('message', sa.String(length=300), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ingest_errors'))
    )
    with op.batch_alter_table('ingest_errors', schema=None) as batch_op:
        batch_op.create_index('ix_ingest_errors_tenant_received', ['tenant_id', 'received_at'], unique=False)

    op.create_table('rollup_receipts',
    sa.Column('delta_id', sa.String(length=36), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('region', sa.String(length=20), nullable=False),
    sa.Column('applied_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('delta_id', name=op.f('pk_rollup_receipts'))
    )
    with op.batch_alter_table('rollup_receipts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rollup_receipts_tenant_id'), ['tenant_id'], unique=False)



def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('rollup_receipts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rollup_receipts_tenant_id'))

    op.drop_table('rollup_receipts')
    with op.batch_alter_table('ingest_errors', schema=None) as batch_op:
        batch_op.drop_index('ix_ingest_errors_tenant_received')

    op.drop_table('ingest_errors')
    op.drop_table('contact_rollups')
