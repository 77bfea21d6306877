"""request_signatures: each accepted API request signature, so that it takes effect once

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-09 09:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('request_signatures',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('signed_at', sa.DateTime(), nullable=False),
    sa.Column('accepted_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('request_signatures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_request_signatures_signed_at'), ['signed_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('request_signatures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_request_signatures_signed_at'))

    op.drop_table('request_signatures')
