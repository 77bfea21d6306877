"""WhatsApp's conversation window and replies: delivery_events.address (an inbound
message's sender, "<channel>:<number>", indexed with occurred_at) and an index on
customers.phone (an inbound message finds the latest delivery to its number).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 18:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('delivery_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('address', sa.String(length=80), nullable=True))
        batch_op.create_index('ix_delivery_events_address', ['address', 'occurred_at'],
                              unique=False)
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.create_index('ix_customers_phone', ['phone'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_index('ix_customers_phone')
    with op.batch_alter_table('delivery_events', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_events_address')
        batch_op.drop_column('address')
