"""Database engine and sessions: SQLite (WAL, one writer) or PostgreSQL, chosen by URL.

``Database.write()`` opens a transaction that may write; on SQLite it begins with
``BEGIN IMMEDIATE`` so two writers queue on the busy timeout instead of failing on a
lock upgrade. ``Database.read()`` opens a plain read transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

SQLITE_BUSY_TIMEOUT_MS = 30_000
write_generation = 0
"""Committed write transactions in this process: read caches compare it to drop stale entries."""


def make_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """Create the async engine for ``url`` with the pragmas and pool Shoal expects."""
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        _install_sqlite_hooks(engine)
        return engine
    return create_async_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, pool_recycle=1800
    )


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    """Take over SQLite transaction control (the pysqlite driver's own is broken for this)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        if conn.get_execution_options().get("shoal_read_only"):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """The engine plus session factories for read and write transactions."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size)
        self.is_sqlite = url.startswith("sqlite")
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction that commits on success and rolls back on error."""
        global write_generation
        async with self.sessionmaker() as session, session.begin():
            yield session
        write_generation += 1

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only; on SQLite it does not take the write lock.

        Closing the session ends the transaction; loaded objects stay readable (detached).
        """
        async with self.sessionmaker() as session:
            if self.is_sqlite:
                await session.connection(execution_options={"shoal_read_only": True})
            yield session

    async def close(self) -> None:
        await self.engine.dispose()
