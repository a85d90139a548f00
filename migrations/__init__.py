"""Alembic migrations: every schema change, runnable on SQLite and PostgreSQL."""
