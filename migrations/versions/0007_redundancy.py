"""redundancy: our mirrors of remote videos, and the CacheFiles other instances sent for ours

Revision ID: 0004_redundancy
Revises: 0007_p2p_stats
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004_redundancy'
down_revision = '0007_p2p_stats'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'video_mirrors',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('video_id', sa.Integer(), nullable=False),
        sa.Column('strategy', sa.String(length=16), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('size', sa.BigInteger(), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['video_id'], ['videos.id'], name=op.f('fk_video_mirrors_video_id_videos'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_video_mirrors')),
        sa.UniqueConstraint('video_id', name=op.f('uq_video_mirrors_video_id')),
    )
    op.create_table(
        'video_redundancies',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('ap_id', sa.String(length=2000), nullable=False),
        sa.Column('video_id', sa.Integer(), nullable=False),
        sa.Column('actor_id', sa.Integer(), nullable=False),
        sa.Column('base_url', sa.String(length=2000), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['actor_id'], ['actors.id'], name=op.f('fk_video_redundancies_actor_id_actors'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['video_id'], ['videos.id'],
                                name=op.f('fk_video_redundancies_video_id_videos'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_video_redundancies')),
        sa.UniqueConstraint('ap_id', name=op.f('uq_video_redundancies_ap_id')),
    )
    op.create_index(op.f('ix_video_redundancies_video_id'), 'video_redundancies', ['video_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_video_redundancies_video_id'), table_name='video_redundancies')
    op.drop_table('video_redundancies')
    op.drop_table('video_mirrors')
