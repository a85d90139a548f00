"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('actors',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('preferred_username', sa.String(length=100), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=True),
    sa.Column('ap_id', sa.String(length=2000), nullable=False),
    sa.Column('inbox_url', sa.String(length=2000), nullable=False),
    sa.Column('shared_inbox_url', sa.String(length=2000), nullable=True),
    sa.Column('outbox_url', sa.String(length=2000), nullable=True),
    sa.Column('followers_url', sa.String(length=2000), nullable=True),
    sa.Column('following_url', sa.String(length=2000), nullable=True),
    sa.Column('display_name', sa.String(length=120), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('support', sa.Text(), nullable=False),
    sa.Column('public_key_pem', sa.Text(), nullable=True),
    sa.Column('private_key_pem', sa.Text(), nullable=True),
    sa.Column('avatar_url', sa.String(length=2000), nullable=True),
    sa.Column('banner_url', sa.String(length=2000), nullable=True),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('fetched_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['owner_id'], ['actors.id'], name=op.f('fk_actors_owner_id_actors'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_actors')),
    sa.UniqueConstraint('ap_id', name=op.f('uq_actors_ap_id')),
    sa.UniqueConstraint('preferred_username', 'host', name='uq_actors_username_host')
    )
    with op.batch_alter_table('actors', schema=None) as batch_op:
        batch_op.create_index('ix_actors_owner_id', ['owner_id'], unique=False)

    op.create_table('instance_options',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_instance_options'))
    )
    op.create_table('oauth_clients',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('client_secret', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oauth_clients')),
    sa.UniqueConstraint('client_id', name=op.f('uq_oauth_clients_client_id'))
    )
    op.create_table('work_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('subject', sa.String(length=2000), nullable=False),
    sa.Column('dedupe_key', sa.String(length=255), nullable=True),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('locked_by', sa.String(length=255), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('state_changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_work_items')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_work_items_dedupe_key'))
    )
    with op.batch_alter_table('work_items', schema=None) as batch_op:
        batch_op.create_index('ix_work_items_due', ['state', 'next_attempt_at'], unique=False)

    op.create_table('follows',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('follower_id', sa.Integer(), nullable=False),
    sa.Column('target_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('ap_id', sa.String(length=2000), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['follower_id'], ['actors.id'], name=op.f('fk_follows_follower_id_actors'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['target_id'], ['actors.id'], name=op.f('fk_follows_target_id_actors'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_follows')),
    sa.UniqueConstraint('ap_id', name=op.f('uq_follows_ap_id')),
    sa.UniqueConstraint('follower_id', 'target_id', name='uq_follows_follower_target')
    )
    with op.batch_alter_table('follows', schema=None) as batch_op:
        batch_op.create_index('ix_follows_target_state', ['target_id', 'state'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=50), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('role', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('must_change_password', sa.Boolean(), nullable=False),
    sa.Column('blocked', sa.Boolean(), nullable=False),
    sa.Column('blocked_reason', sa.Text(), nullable=True),
    sa.Column('registration_reason', sa.Text(), nullable=True),
    sa.Column('video_quota', sa.BigInteger(), nullable=False),
    sa.Column('nsfw_policy', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['actors.id'], name=op.f('fk_users_account_id_actors'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('account_id', name=op.f('uq_users_account_id')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email')),
    sa.UniqueConstraint('username', name=op.f('uq_users_username'))
    )
    op.create_table('videos',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uuid', sa.String(length=36), nullable=False),
    sa.Column('short_uuid', sa.String(length=32), nullable=False),
    sa.Column('channel_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('support', sa.Text(), nullable=False),
    sa.Column('language', sa.String(length=16), nullable=True),
    sa.Column('category', sa.Integer(), nullable=True),
    sa.Column('licence', sa.Integer(), nullable=True),
    sa.Column('tags', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('privacy', sa.Integer(), nullable=False),
    sa.Column('nsfw', sa.Boolean(), nullable=False),
    sa.Column('comments_enabled', sa.Boolean(), nullable=False),
    sa.Column('download_enabled', sa.Boolean(), nullable=False),
    sa.Column('wait_transcoding', sa.Boolean(), nullable=False),
    sa.Column('hidden', sa.Boolean(), nullable=False),
    sa.Column('hidden_reason', sa.Text(), nullable=True),
    sa.Column('duration', sa.Float(), nullable=False),
    sa.Column('aspect_ratio', sa.Float(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('state_changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('progress', sa.Integer(), nullable=False),
    sa.Column('failure_code', sa.String(length=64), nullable=True),
    sa.Column('failure_reason', sa.Text(), nullable=True),
    sa.Column('source_filename', sa.String(length=255), nullable=True),
    sa.Column('source_size', sa.BigInteger(), nullable=False),
    sa.Column('storage_prefix', sa.String(length=64), nullable=True),
    sa.Column('master_playlist', sa.String(length=255), nullable=True),
    sa.Column('segments_sha256', sa.String(length=255), nullable=True),
    sa.Column('thumbnail', sa.String(length=255), nullable=True),
    sa.Column('preview', sa.String(length=255), nullable=True),
    sa.Column('storyboard', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('views', sa.BigInteger(), nullable=False),
    sa.Column('likes', sa.Integer(), nullable=False),
    sa.Column('dislikes', sa.Integer(), nullable=False),
    sa.Column('remote_url', sa.String(length=2000), nullable=True),
    sa.Column('remote_data', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('originally_published_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['channel_id'], ['actors.id'], name=op.f('fk_videos_channel_id_actors'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_videos')),
    sa.UniqueConstraint('remote_url', name=op.f('uq_videos_remote_url')),
    sa.UniqueConstraint('short_uuid', name=op.f('uq_videos_short_uuid')),
    sa.UniqueConstraint('uuid', name=op.f('uq_videos_uuid'))
    )
    with op.batch_alter_table('videos', schema=None) as batch_op:
        batch_op.create_index('ix_videos_channel_published', ['channel_id', 'published_at'], unique=False)
        batch_op.create_index('ix_videos_listing', ['state', 'privacy', 'published_at'], unique=False)

    op.create_table('auth_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('access_digest', sa.String(length=64), nullable=False),
    sa.Column('refresh_digest', sa.String(length=64), nullable=True),
    sa.Column('access_expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('refresh_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_auth_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_auth_tokens')),
    sa.UniqueConstraint('access_digest', name=op.f('uq_auth_tokens_access_digest')),
    sa.UniqueConstraint('refresh_digest', name=op.f('uq_auth_tokens_refresh_digest'))
    )
    with op.batch_alter_table('auth_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_auth_tokens_user_id'), ['user_id'], unique=False)

    op.create_table('comments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('video_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('thread_id', sa.Integer(), nullable=True),
    sa.Column('in_reply_to_id', sa.Integer(), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('ap_id', sa.String(length=2000), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['actors.id'], name=op.f('fk_comments_account_id_actors'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['in_reply_to_id'], ['comments.id'], name=op.f('fk_comments_in_reply_to_id_comments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['thread_id'], ['comments.id'], name=op.f('fk_comments_thread_id_comments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['video_id'], ['videos.id'], name=op.f('fk_comments_video_id_videos'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_comments')),
    sa.UniqueConstraint('ap_id', name=op.f('uq_comments_ap_id'))
    )
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_comments_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_comments_in_reply_to_id'), ['in_reply_to_id'], unique=False)
        batch_op.create_index('ix_comments_video_thread', ['video_id', 'thread_id'], unique=False)

    op.create_table('renditions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('video_id', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('fps', sa.Float(), nullable=False),
    sa.Column('bitrate', sa.Integer(), nullable=False),
    sa.Column('average_bitrate', sa.Integer(), nullable=False),
    sa.Column('codecs', sa.String(length=100), nullable=False),
    sa.Column('playlist_path', sa.String(length=2000), nullable=False),
    sa.Column('file_path', sa.String(length=2000), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('torrent_path', sa.String(length=2000), nullable=True),
    sa.Column('info_hash', sa.String(length=40), nullable=True),
    sa.ForeignKeyConstraint(['video_id'], ['videos.id'], name=op.f('fk_renditions_video_id_videos'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_renditions')),
    sa.UniqueConstraint('video_id', 'height', name='uq_renditions_video_height')
    )
    with op.batch_alter_table('renditions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_renditions_info_hash'), ['info_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_renditions_video_id'), ['video_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('renditions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_renditions_video_id'))
        batch_op.drop_index(batch_op.f('ix_renditions_info_hash'))

    op.drop_table('renditions')
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.drop_index('ix_comments_video_thread')
        batch_op.drop_index(batch_op.f('ix_comments_in_reply_to_id'))
        batch_op.drop_index(batch_op.f('ix_comments_account_id'))

    op.drop_table('comments')
    with op.batch_alter_table('auth_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_auth_tokens_user_id'))

    op.drop_table('auth_tokens')
    with op.batch_alter_table('videos', schema=None) as batch_op:
        batch_op.drop_index('ix_videos_listing')
        batch_op.drop_index('ix_videos_channel_published')

    op.drop_table('videos')
    op.drop_table('users')
    with op.batch_alter_table('follows', schema=None) as batch_op:
        batch_op.drop_index('ix_follows_target_state')

    op.drop_table('follows')
    with op.batch_alter_table('work_items', schema=None) as batch_op:
        batch_op.drop_index('ix_work_items_due')

    op.drop_table('work_items')
    op.drop_table('oauth_clients')
    op.drop_table('instance_options')
    with op.batch_alter_table('actors', schema=None) as batch_op:
        batch_op.drop_index('ix_actors_owner_id')

    op.drop_table('actors')
