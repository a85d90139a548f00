"""video states name the step done: probing → received, transcoding → probed, publishing → transcoded

Revision ID: 0013_video_states_past
Revises: 0012_remote_host_downtime
Create Date: 2026-12-06

A state used to name the step under way; it now names the last step finished (see
``VideoState``), so a video caught mid-step maps to the state before that step. Processing
restarts from ``received`` on its next attempt either way.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013_video_states_past'
down_revision = '0012_remote_host_downtime'
branch_labels = None
depends_on = None

_FORWARD = (("probing", "received"), ("transcoding", "probed"), ("publishing", "transcoded"))


def _rename(pairs: tuple[tuple[str, str], ...]) -> None:
    statement = sa.text("UPDATE videos SET state = :new WHERE state = :old")
    for old, new in pairs:
        op.execute(statement.bindparams(old=old, new=new))


def upgrade() -> None:
    _rename(_FORWARD)


def downgrade() -> None:
    # "received" existed before; only the two renamed-onto states go back.
    _rename((("probed", "transcoding"), ("transcoded", "publishing")))
