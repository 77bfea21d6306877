"""issue 28: experiments that decide (owner: experiments). A run's winner decisions, resets
and max_duration notes (`experiment_decisions`), and a bandit's weights over time
(`allocation_updates`).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 04:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'experiment_decisions',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('run_id', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('decided_at', sa.DateTime(), nullable=False),
        sa.Column('metric', sa.String(length=32), nullable=True),
        sa.Column('winner', sa.String(length=64), nullable=True),
        sa.Column('effect', sa.Float(), nullable=True),
        sa.Column('ci_low', sa.Float(), nullable=True),
        sa.Column('ci_high', sa.Float(), nullable=True),
        sa.Column('p_value', sa.Float(), nullable=True),
        sa.Column('sample_sizes', sa.JSON(), nullable=True),
        sa.Column('detail', sa.JSON(), nullable=True),
        sa.Column('rehearsal', sa.Boolean(), nullable=False),
        sa.Column('by', sa.String(length=16), nullable=False),
        sa.Column('note', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['run_id'], ['runs.id']),
        sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_experiment_decisions_run_id', 'experiment_decisions', ['run_id'])
    op.create_table(
        'allocation_updates',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('run_id', sa.String(length=64), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('weights', sa.JSON(), nullable=False),
        sa.Column('counts', sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(['run_id'], ['runs.id']),
        sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_allocation_updates_run_id', 'allocation_updates', ['run_id'])


def downgrade() -> None:
    op.drop_index('ix_allocation_updates_run_id', table_name='allocation_updates')
    op.drop_table('allocation_updates')
    op.drop_index('ix_experiment_decisions_run_id', table_name='experiment_decisions')
    op.drop_table('experiment_decisions')
