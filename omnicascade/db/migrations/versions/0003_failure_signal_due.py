"""deliveries.failure_signal_due: failed steps whose cascade has not been told yet

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 20:40:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failure_signal_due', sa.DateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_deliveries_failure_signal_due'),
                              ['failure_signal_due'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deliveries_failure_signal_due'))
        batch_op.drop_column('failure_signal_due')
