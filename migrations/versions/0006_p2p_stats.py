"""p2p stats: running totals of the bytes players received over HTTP and from peers

Revision ID: 0007_p2p_stats
Revises: 0008_video_sort_index
Create Date: 2026-11-21

One row (id 1), created here, that player reports add to; the admin page shows the
instance's P2P ratio from it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007_p2p_stats'
down_revision = '0008_video_sort_index'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'p2p_stats',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('http_bytes', sa.BigInteger(), nullable=False),
        sa.Column('peer_bytes', sa.BigInteger(), nullable=False),
        sa.Column('reports', sa.BigInteger(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_p2p_stats')),
    )
    op.execute(
        "INSERT INTO p2p_stats (id, http_bytes, peer_bytes, reports, updated_at) "
        "VALUES (1, 0, 0, 0, CURRENT_TIMESTAMP)"
    )


def downgrade() -> None:
    op.drop_table('p2p_stats')
