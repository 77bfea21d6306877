"""rehearsals and conversions that tell the truth: runs.sends_live (a rehearsal sends to
the outbox unless launched --live), enrollments.conversion_window_s (how long after the
cascade a conversion still counts), conversions.matched (False: unknown customer).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 15:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sends_live', sa.Boolean(), nullable=False,
                                      server_default=sa.true()))
    with op.batch_alter_table('enrollments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('conversion_window_s', sa.Float(), nullable=True))
    with op.batch_alter_table('conversions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('matched', sa.Boolean(), nullable=False,
                                      server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table('conversions', schema=None) as batch_op:
        batch_op.drop_column('matched')
    with op.batch_alter_table('enrollments', schema=None) as batch_op:
        batch_op.drop_column('conversion_window_s')
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('sends_live')
