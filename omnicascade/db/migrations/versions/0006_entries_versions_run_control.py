"""entries, versions and run control: enrollments.campaign/entry_key/active_entry/match_key
(one live cascade per entry, enforced by a unique index), runs.version/content_hash/
status_changed_at/superseded_by (one enrolling version per trigger campaign),
events.outcome; the (run, customer) uniqueness goes: a customer may enter again.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 10:00:00
"""
import hashlib

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

ENROLLING = "status IN ('listening', 'paused') AND trigger_event IS NOT NULL"


def _entry(campaign: str, customer: str, key: str) -> str:
    # the same form as omnicascade.cascade.entries.entry_id
    return hashlib.sha256("\x1f".join((campaign, customer, key)).encode()).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), nullable=False,
                                      server_default='1'))
        batch_op.add_column(sa.Column('content_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('status_changed_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('superseded_by', sa.String(length=64), nullable=True))
    with op.batch_alter_table('enrollments', schema=None) as batch_op:
        batch_op.drop_constraint('uq_enrollment_run_customer', type_='unique')
        batch_op.add_column(sa.Column('campaign', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('entry_key', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('active_entry', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('match_key', sa.String(length=128), nullable=True))
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('outcome', sa.JSON(), nullable=True))

    bind = op.get_bind()
    # Each earlier launch was its own version; content_hash stays NULL for them (the app
    # computes it from the snapshot when it needs to compare).
    runs = bind.execute(sa.text(
        "SELECT id, campaign, status, trigger_event FROM runs "
        "ORDER BY campaign, created_at, id")).all()
    version: dict[str, int] = {}
    newest_enrolling: dict[str, str] = {}
    for run_id, campaign, status, trigger in runs:
        version[campaign] = version.get(campaign, 0) + 1
        bind.execute(sa.text("UPDATE runs SET version = :v WHERE id = :id"),
                     {"v": version[campaign], "id": run_id})
        if status == 'listening' and trigger:
            older = newest_enrolling.get(campaign)
            if older:  # two versions listening (the relaunch bug): the newer one wins
                bind.execute(sa.text("UPDATE runs SET status = 'superseded', superseded_by = "
                                     ":new WHERE id = :old"), {"new": run_id, "old": older})
            newest_enrolling[campaign] = run_id
    bind.execute(sa.text("UPDATE enrollments SET entry_key = '', campaign = (SELECT runs.campaign "
                         "FROM runs WHERE runs.id = enrollments.run_id)"))
    live = bind.execute(sa.text(
        "SELECT id, campaign, customer_id FROM enrollments WHERE status IN ('pending', 'active') "
        "ORDER BY enrolled_at DESC, id")).all()
    taken: set[str] = set()
    for enrollment_id, campaign, customer in live:
        entry = _entry(campaign, customer, "")
        if entry not in taken:  # the newest live cascade of an entry holds it
            taken.add(entry)
            bind.execute(sa.text("UPDATE enrollments SET active_entry = :e WHERE id = :id"),
                         {"e": entry, "id": enrollment_id})

    with op.batch_alter_table('enrollments', schema=None) as batch_op:
        batch_op.create_unique_constraint('uq_enrollments_active_entry', ['active_entry'])
        batch_op.create_index('ix_enrollments_run_customer', ['run_id', 'customer_id'],
                              unique=False)
        batch_op.create_index('ix_enrollments_entry', ['campaign', 'customer_id', 'entry_key'],
                              unique=False)
    op.create_index('uq_runs_one_enrolling_version', 'runs', ['campaign'], unique=True,
                    sqlite_where=sa.text(ENROLLING), postgresql_where=sa.text(ENROLLING))


def downgrade() -> None:
    op.drop_index('uq_runs_one_enrolling_version', table_name='runs')
    with op.batch_alter_table('enrollments', schema=None) as batch_op:
        batch_op.drop_index('ix_enrollments_entry')
        batch_op.drop_index('ix_enrollments_run_customer')
        batch_op.drop_constraint('uq_enrollments_active_entry', type_='unique')
        batch_op.drop_column('match_key')
        batch_op.drop_column('active_entry')
        batch_op.drop_column('entry_key')
        batch_op.drop_column('campaign')
        batch_op.create_unique_constraint('uq_enrollment_run_customer', ['run_id', 'customer_id'])
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_column('outcome')
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('superseded_by')
        batch_op.drop_column('status_changed_at')
        batch_op.drop_column('content_hash')
        batch_op.drop_column('version')
