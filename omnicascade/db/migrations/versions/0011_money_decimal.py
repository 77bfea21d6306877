"""issue 24: money as Numeric, each delivery's cost with its currency (owner: money)

deliveries.cost Float → Numeric(12, 6) and conversions.amount Float → Numeric(14, 4): exact
decimals, no 1.6500000000000001. A new deliveries.cost_currency holds the currency each
cost is in. Rows priced before it get the configured cost currency (OMNICASCADE_COST_CURRENCY
at migration time: costs have always been in it). Messages that went out before costs were
stored at send (cost NULL) were priced by every report at read time; they are priced here,
once, by the one price (Settings.price_of), and reports never price again.

batch_alter_table: SQLite cannot alter a column's type, so it copies the table; PostgreSQL
alters in place (double precision → numeric keeps each value to the column's scale).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 03:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

WENT_OUT = ("sent", "unknown")  # vocabulary.WENT_OUT as it is at this revision


def upgrade() -> None:
    from omnicascade.config import load_settings
    with op.batch_alter_table('deliveries') as batch_op:
        batch_op.alter_column('cost', existing_type=sa.Float(), type_=sa.Numeric(12, 6),
                              existing_nullable=True)
        batch_op.add_column(sa.Column('cost_currency', sa.String(length=3), nullable=True))
    with op.batch_alter_table('conversions') as batch_op:
        batch_op.alter_column('amount', existing_type=sa.Float(), type_=sa.Numeric(14, 4),
                              existing_nullable=True)
    settings = load_settings()
    deliveries = sa.table('deliveries', sa.column('id', sa.String), sa.column('channel', sa.String),
                          sa.column('status', sa.String), sa.column('segments', sa.Integer),
                          sa.column('cost', sa.Numeric(12, 6)),
                          sa.column('cost_currency', sa.String))
    conn = op.get_bind()
    unpriced = conn.execute(sa.select(deliveries.c.id, deliveries.c.channel,
                                      deliveries.c.segments)
                            .where(deliveries.c.cost.is_(None),
                                   deliveries.c.status.in_(WENT_OUT))).all()
    for row in unpriced:
        conn.execute(deliveries.update().where(deliveries.c.id == row.id)
                     .values(cost=settings.price_of(row.channel, row.segments)))
    conn.execute(deliveries.update().where(deliveries.c.cost.is_not(None))
                 .values(cost_currency=settings.cost_currency))


def downgrade() -> None:
    with op.batch_alter_table('conversions') as batch_op:
        batch_op.alter_column('amount', existing_type=sa.Numeric(14, 4), type_=sa.Float(),
                              existing_nullable=True)
    with op.batch_alter_table('deliveries') as batch_op:
        batch_op.drop_column('cost_currency')
        batch_op.alter_column('cost', existing_type=sa.Numeric(12, 6), type_=sa.Float(),
                              existing_nullable=True)
