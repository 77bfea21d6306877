"""issue 23: promo codes stored in their one normal form (owner: promo codes)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 03:00:00
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
