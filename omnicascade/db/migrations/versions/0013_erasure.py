"""issue 25: erasure (owner: erasure) — erased_subjects (the keyed hashes an erased person
stays out under) and erasures (the audit, no personal data).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 04:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('erased_subjects',
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('hash')
    )
    op.create_table('erasures',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('erased_at', sa.DateTime(), nullable=False),
    sa.Column('via', sa.String(length=16), nullable=False),
    sa.Column('rows', sa.JSON(), nullable=False),
    sa.Column('cascades_ended', sa.Integer(), nullable=False),
    sa.Column('workflows_deleted', sa.Integer(), nullable=False),
    sa.Column('workflows_pending', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('erasures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_erasures_erased_at'), ['erased_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('erasures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_erasures_erased_at'))
    op.drop_table('erasures')
    op.drop_table('erased_subjects')
