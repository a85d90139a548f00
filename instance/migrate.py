"""Apply and inspect Alembic migrations from code (`shoal db upgrade`, `shoal serve`, tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from .db import Database

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config pointing at Shoal's migrations (no alembic.ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def head_revisions() -> set[str]:
    """The newest revision of every branch (work on separate features may branch; both apply)."""
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def head_revision() -> str:
    """The newest revisions, comma-separated, for display."""
    return ",".join(sorted(head_revisions()))


async def upgrade(db: Database, revision: str = "heads") -> None:
    """Apply migrations up to ``revision`` over the database's own engine."""

    def _run(connection: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    async with db.engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()


async def current_revisions(db: Database) -> set[str]:
    """The revisions the database is at (empty when it was never migrated)."""

    def _get(connection: Connection) -> set[str]:
        return set(MigrationContext.configure(connection).get_current_heads())

    async with db.engine.connect() as connection:
        return await connection.run_sync(_get)


async def current_revision(db: Database) -> str | None:
    """The revisions the database is at, comma-separated, or None when it was never migrated."""
    return ",".join(sorted(await current_revisions(db))) or None


async def pending(db: Database) -> bool:
    """True when the database is behind the newest migrations."""
    return await current_revisions(db) != head_revisions()
