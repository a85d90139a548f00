"""search: full-text index over videos, and the custom-thumbnail flag

Revision ID: 0006_search
Revises: 0003
Create Date: 2026-11-21

The full-text objects are dialect-specific and not part of the models (the migration test
leaves them out of its comparison):

- SQLite: ``videos_fts``, an FTS5 table with external content (it stores only the index and
  reads the text back from ``videos``), kept current by three triggers and filled once here.
- PostgreSQL: ``ix_videos_search``, a GIN index on the weighted ``to_tsvector('simple', …)``
  of title (A), tags (B) and description (C). ``instance.services.search`` must query this
  exact expression for the planner to use the index.

A later migration that makes Alembic's SQLite batch mode *recreate* ``videos`` drops the
triggers with the old table; it must create them again (call :func:`sqlite_fts_create`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006_search'
down_revision = '0003'
branch_labels = None
depends_on = None

PG_VECTOR = (
    "(setweight(to_tsvector('simple'::regconfig, name), 'A')"
    " || setweight(to_tsvector('simple'::regconfig, tags::text), 'B')"
    " || setweight(to_tsvector('simple'::regconfig, description), 'C'))"
)

SQLITE_FTS = [
    "CREATE VIRTUAL TABLE videos_fts USING fts5("
    "name, description, tags, content='videos', content_rowid='id',"
    " tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER videos_fts_ai AFTER INSERT ON videos BEGIN"
    " INSERT INTO videos_fts(rowid, name, description, tags)"
    " VALUES (new.id, new.name, new.description, new.tags); END",
    "CREATE TRIGGER videos_fts_ad AFTER DELETE ON videos BEGIN"
    " INSERT INTO videos_fts(videos_fts, rowid, name, description, tags)"
    " VALUES ('delete', old.id, old.name, old.description, old.tags); END",
    "CREATE TRIGGER videos_fts_au AFTER UPDATE OF name, description, tags ON videos BEGIN"
    " INSERT INTO videos_fts(videos_fts, rowid, name, description, tags)"
    " VALUES ('delete', old.id, old.name, old.description, old.tags);"
    " INSERT INTO videos_fts(rowid, name, description, tags)"
    " VALUES (new.id, new.name, new.description, new.tags); END",
    # Backfill: index the rows already there.
    "INSERT INTO videos_fts(videos_fts) VALUES ('rebuild')",
]


def sqlite_fts_create() -> None:
    """Create (and fill) the SQLite FTS5 table and its triggers."""
    for statement in SQLITE_FTS:
        op.execute(statement)


def upgrade() -> None:
    with op.batch_alter_table('videos', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('custom_thumbnail', sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    dialect = op.get_bind().dialect.name
    if dialect == 'sqlite':
        sqlite_fts_create()
    elif dialect == 'postgresql':
        op.execute(f"CREATE INDEX ix_videos_search ON videos USING gin ({PG_VECTOR})")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == 'sqlite':
        for trigger in ('videos_fts_ai', 'videos_fts_ad', 'videos_fts_au'):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS videos_fts")
    elif dialect == 'postgresql':
        op.execute("DROP INDEX IF EXISTS ix_videos_search")
    with op.batch_alter_table('videos', schema=None) as batch_op:
        batch_op.drop_column('custom_thumbnail')
