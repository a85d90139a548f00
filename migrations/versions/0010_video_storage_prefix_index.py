"""video storage prefix index: find the video a thumbnail or preview file belongs to

Revision ID: 0010_video_storage_prefix_index
Revises: 0009_delivery_bodies
Create Date: 2026-12-06

Thumbnails and previews are stored as ``<storage prefix>.jpg``; serving one checks that the
caller may see its video, found by that prefix.
"""

from __future__ import annotations

from alembic import op

revision = '0010_video_storage_prefix_index'
down_revision = '0009_delivery_bodies'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_videos_storage_prefix', 'videos', ['storage_prefix'])


def downgrade() -> None:
    op.drop_index('ix_videos_storage_prefix', table_name='videos')
