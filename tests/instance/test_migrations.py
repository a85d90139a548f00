"""Migrations match the models on the backend in use, and go down to base and up again.

Embedded runs use a fresh SQLite file; scaled runs create (and drop) a fresh PostgreSQL
database next to the test databases.
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from instance import migrate
from instance.db import Database
from instance.models import Base, VideoState
from tests.conftest import SCALED, InstanceFactory, asyncpg_to_sqlalchemy, pg_dsn


@pytest.fixture
async def empty_database(tmp_path: Path, backend_services: dict) -> AsyncIterator[Database]:
    """A new, empty database of the backend under test."""
    if not SCALED:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}")
        try:
            yield db
        finally:
            await db.close()
        return
    name = f"shoal_mig_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(pg_dsn())
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    db = Database(asyncpg_to_sqlalchemy(pg_dsn(name)))
    try:
        yield db
    finally:
        await db.close()
        conn = await asyncpg.connect(pg_dsn())
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


# Objects made by raw DDL, not declared in the models: 0006_search's SQLite FTS5 table (and its
# shadow tables) and PostgreSQL expression GIN index; 0008's expression index for list order.
FTS_OBJECTS = ("videos_fts", "ix_videos_search", "ix_videos_sort")


def _not_fts(name: str | None, type_: str, parent_names: dict) -> bool:
    return not (name or "").startswith(FTS_OBJECTS)


def _diff(connection: Connection) -> list:
    context = MigrationContext.configure(connection, opts={"compare_type": True, "include_name": _not_fts})
    with warnings.catch_warnings():
        # SQLite's reflection cannot describe an expression index (it is left out above anyway).
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index")
        return compare_metadata(context, Base.metadata)


def _downgrade(connection: Connection) -> None:
    cfg = migrate.alembic_config()
    cfg.attributes["connection"] = connection
    command.downgrade(cfg, "base")


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names()) - {"alembic_version"}


async def test_migrated_schema_matches_models(empty_database: Database) -> None:
    await migrate.upgrade(empty_database)
    assert await migrate.current_revision(empty_database) == migrate.head_revision()
    async with empty_database.engine.connect() as connection:
        diff = await connection.run_sync(_diff)
    assert diff == [], f"models and migrations differ: {diff}"


async def test_downgrade_to_base_and_upgrade_again(empty_database: Database) -> None:
    await migrate.upgrade(empty_database)
    async with empty_database.engine.connect() as connection:
        first = await connection.run_sync(_tables)
        assert {"actors", "users", "videos", "renditions", "follows"} <= first
        await connection.run_sync(_downgrade)
        await connection.commit()
    async with empty_database.engine.connect() as connection:
        assert await connection.run_sync(_tables) == set()
    assert await migrate.current_revision(empty_database) is None
    await migrate.upgrade(empty_database)
    assert await migrate.current_revision(empty_database) == migrate.head_revision()
    async with empty_database.engine.connect() as connection:
        assert await connection.run_sync(_tables) == first


def test_file_order_is_the_chain_order() -> None:
    """Reading the folder in name order reads the migrations in the order they apply."""
    import re

    folder = Path(migrate.__file__).resolve().parents[1] / "migrations" / "versions"
    revisions = {}
    for path in sorted(folder.glob("0*.py")):
        text = path.read_text()
        revision = re.search(r"^revision = '([^']+)'", text, re.M).group(1)
        down = re.search(r"^down_revision = (None|'([^']+)')", text, re.M).group(2)
        revisions[path.name] = (revision, down)
    chain = [revision for revision, _ in revisions.values()]
    assert [down for _, down in revisions.values()] == [None, *chain[:-1]], revisions


async def test_video_states_name_the_step_done(make_instance: InstanceFactory) -> None:
    """0013 renames states caught mid-step to the step before; going down and up keeps them."""
    from sqlalchemy import text

    from tests.instance.test_videos import new_video

    instance = await make_instance(worker=False)
    await instance.create_user("erin")
    probed = await new_video(instance, "erin", "Being transcoded", state=VideoState.PROBED)
    transcoded = await new_video(instance, "erin", "Being published", state=VideoState.TRANSCODED)
    db = instance.shoal.db

    def to_0012(connection: Connection) -> None:
        cfg = migrate.alembic_config()
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "0012_remote_host_downtime")

    async def states() -> dict[int, str]:
        async with db.engine.connect() as connection:
            rows = await connection.execute(text("SELECT id, state FROM videos"))
            return dict(rows.all())

    async with db.engine.connect() as connection:
        await connection.run_sync(to_0012)
        await connection.commit()
    assert await states() == {probed.id: "transcoding", transcoded.id: "publishing"}
    async with db.engine.begin() as connection:
        mid_probe = text("UPDATE videos SET state = 'probing' WHERE id = :id")
        await connection.execute(mid_probe, {"id": probed.id})
    await migrate.upgrade(db)
    assert await states() == {probed.id: "received", transcoded.id: "transcoded"}
