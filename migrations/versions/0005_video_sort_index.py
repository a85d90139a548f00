"""video sort index: listings by state and privacy in ``coalesce(published_at, created_at), id`` order

Revision ID: 0008_video_sort_index
Revises: 0006_search
Create Date: 2026-11-21

Every video list (home, API, channels) filters on state and privacy and orders by
``coalesce(published_at, created_at)`` then ``id``, newest first. With only
``ix_videos_listing`` a cache miss sorts every matching row in a temporary B-tree; with this
index the database walks it in order and stops at the page.
An expression index is plain DDL on both SQLite and PostgreSQL; it is not declared in the models
(the migration test leaves it out of its comparison), so ``instance.services.video_lists`` must keep
ordering by this exact expression.
"""

from __future__ import annotations

from alembic import op

revision = '0008_video_sort_index'
down_revision = '0006_search'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX ix_videos_sort ON videos (state, privacy, (coalesce(published_at, created_at)), id)")


def downgrade() -> None:
    op.execute("DROP INDEX ix_videos_sort")
