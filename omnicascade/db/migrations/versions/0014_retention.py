"""issue 25: retention (owner: data protection). An outbox message whose subject and
bodies a prune dropped (cascade/retention.py) says when: `pruned_at`, so views show
`body_pruned: true` instead of an empty message.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 04:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pruned_at', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_column('pruned_at')
