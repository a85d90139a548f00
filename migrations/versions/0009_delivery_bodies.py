"""delivery bodies: an outgoing activity's bytes stored once per fan-out

Revision ID: 0009_delivery_bodies
Revises: 0004_redundancy
Create Date: 2026-11-21

A fan-out used to copy the activity's JSON into each of its ``deliver`` rows (1,000 copies
of a Video's ``Create`` for 1,000 inboxes); the rows now name a ``delivery_bodies`` row.
Rows written before this revision keep their own copy and are still delivered.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009_delivery_bodies'
down_revision = '0004_redundancy'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'delivery_bodies',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('activity_id', sa.String(length=2000), nullable=True),
        sa.Column('body', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_bodies')),
    )
    op.create_index(op.f('ix_delivery_bodies_created_at'), 'delivery_bodies', ['created_at'])


def downgrade() -> None:
    op.drop_index(op.f('ix_delivery_bodies_created_at'), table_name='delivery_bodies')
    op.drop_table('delivery_bodies')
