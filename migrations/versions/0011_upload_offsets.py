"""upload offsets: a resumable upload's received bytes and the claim of the chunk being written

Revision ID: 0011_upload_offsets
Revises: 0010_video_storage_prefix_index
Create Date: 2026-12-06

The offset of a resumable upload was the size of its part file, checked under a per-process
lock: the same chunk sent to two web processes was appended twice. ``received`` is now the
offset, advanced by a conditional update, and ``receiving_until`` the lease of the one request
writing a chunk. Uploads in progress during the upgrade start over (their offset reads 0).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011_upload_offsets'
down_revision = '0010_video_storage_prefix_index'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN on both databases (a batch would copy the table on SQLite).
    op.add_column('upload_sessions', sa.Column('received', sa.BigInteger(), server_default='0', nullable=False))
    op.add_column('upload_sessions', sa.Column('receiving_until', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column('upload_sessions', 'receiving_until')
    op.drop_column('upload_sessions', 'received')
