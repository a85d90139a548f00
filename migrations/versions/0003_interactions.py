"""interactions

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('remote_hosts',
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('paused_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_success_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('software', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('host', name=op.f('pk_remote_hosts'))
    )
    op.create_table('video_rates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('video_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('ap_id', sa.String(length=2000), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['actors.id'], name=op.f('fk_video_rates_account_id_actors'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['video_id'], ['videos.id'], name=op.f('fk_video_rates_video_id_videos'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_video_rates')),
    sa.UniqueConstraint('account_id', 'video_id', name='uq_video_rates_account_video'),
    sa.UniqueConstraint('ap_id', name=op.f('uq_video_rates_ap_id'))
    )
    with op.batch_alter_table('video_rates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_video_rates_video_id'), ['video_id'], unique=False)

    op.create_table('video_shares',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=False),
    sa.Column('video_id', sa.Integer(), nullable=False),
    sa.Column('ap_id', sa.String(length=2000), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['actors.id'], name=op.f('fk_video_shares_actor_id_actors'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['video_id'], ['videos.id'], name=op.f('fk_video_shares_video_id_videos'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_video_shares')),
    sa.UniqueConstraint('actor_id', 'video_id', name='uq_video_shares_actor_video'),
    sa.UniqueConstraint('ap_id', name=op.f('uq_video_shares_ap_id'))
    )
    with op.batch_alter_table('video_shares', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_video_shares_video_id'), ['video_id'], unique=False)

    op.create_table('video_view_days',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('video_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('views', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['video_id'], ['videos.id'], name=op.f('fk_video_view_days_video_id_videos'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_video_view_days')),
    sa.UniqueConstraint('video_id', 'day', name='uq_video_view_days_video_day')
    )
    with op.batch_alter_table('video_view_days', schema=None) as batch_op:
        batch_op.create_index('ix_video_view_days_day', ['day'], unique=False)

    op.create_table('abuse_reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reporter_id', sa.Integer(), nullable=True),
    sa.Column('video_id', sa.Integer(), nullable=True),
    sa.Column('comment_id', sa.Integer(), nullable=True),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('ap_id', sa.String(length=2000), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['actors.id'], name=op.f('fk_abuse_reports_account_id_actors'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['comment_id'], ['comments.id'], name=op.f('fk_abuse_reports_comment_id_comments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reporter_id'], ['actors.id'], name=op.f('fk_abuse_reports_reporter_id_actors'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['video_id'], ['videos.id'], name=op.f('fk_abuse_reports_video_id_videos'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_abuse_reports')),
    sa.UniqueConstraint('ap_id', name=op.f('uq_abuse_reports_ap_id'))
    )


def downgrade() -> None:
    op.drop_table('abuse_reports')
    with op.batch_alter_table('video_view_days', schema=None) as batch_op:
        batch_op.drop_index('ix_video_view_days_day')

    op.drop_table('video_view_days')
    with op.batch_alter_table('video_shares', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_video_shares_video_id'))

    op.drop_table('video_shares')
    with op.batch_alter_table('video_rates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_video_rates_video_id'))

    op.drop_table('video_rates')
    op.drop_table('remote_hosts')
