"""remote host downtime: when a failing host started failing, and its last counted failure

Revision ID: 0012_remote_host_downtime
Revises: 0011_upload_offsets
Create Date: 2026-12-06

A delivery pause used to grow with every failed row (2^failures minutes): a batch of rows to
a host that was down for four minutes paused it for sixteen, and the exponent could
overflow. Failures now count once per minute-long round and the pause is as long as the
host has been failing (``failing_since``), up to a day; ``failed_at`` is the last counted
failure.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012_remote_host_downtime'
down_revision = '0011_upload_offsets'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('remote_hosts') as batch:
        batch.add_column(sa.Column('failing_since', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('failed_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('remote_hosts') as batch:
        batch.drop_column('failed_at')
        batch.drop_column('failing_since')
