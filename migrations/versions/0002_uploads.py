"""uploads, and a unique handle key for actors

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('upload_sessions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('channel_id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('content_type', sa.String(length=255), nullable=False),
    sa.Column('attributes', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('s3_key', sa.String(length=1024), nullable=True),
    sa.Column('s3_upload_id', sa.String(length=1024), nullable=True),
    sa.Column('part_size', sa.BigInteger(), nullable=False),
    sa.Column('video_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['channel_id'], ['actors.id'], name=op.f('fk_upload_sessions_channel_id_actors'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_upload_sessions_user_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['video_id'], ['videos.id'], name=op.f('fk_upload_sessions_video_id_videos'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_upload_sessions'))
    )
    with op.batch_alter_table('upload_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_upload_sessions_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_upload_sessions_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('videos', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source_key', sa.String(length=1024), nullable=True))

    with op.batch_alter_table('actors', schema=None) as batch_op:
        batch_op.add_column(sa.Column('handle_key', sa.String(length=400), nullable=True))
    op.execute("UPDATE actors SET handle_key = lower(preferred_username) || '@' || lower(coalesce(host, ''))")
    with op.batch_alter_table('actors', schema=None) as batch_op:
        batch_op.alter_column('handle_key', existing_type=sa.String(length=400), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_actors_handle_key'), ['handle_key'])


def downgrade() -> None:
    with op.batch_alter_table('actors', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_actors_handle_key'), type_='unique')
        batch_op.drop_column('handle_key')

    with op.batch_alter_table('videos', schema=None) as batch_op:
        batch_op.drop_column('source_key')

    with op.batch_alter_table('upload_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_upload_sessions_user_id'))
        batch_op.drop_index(batch_op.f('ix_upload_sessions_expires_at'))

    op.drop_table('upload_sessions')
