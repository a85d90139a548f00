"""The real ``shoal`` console script, run in a subprocess against an embedded data dir."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from instance.auth import verify_password
from instance.db import Database
from instance.models import Role, User

SHOAL = Path(sys.executable).parent / "shoal"


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``shoal`` with only the given SHOAL_* variables set."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
    return subprocess.run(
        [str(SHOAL), *args], env={**clean, **env}, capture_output=True, text=True, timeout=120, check=False
    )


def load_user(data_dir: Path, username: str) -> User | None:
    async def query() -> User | None:
        db = Database(f"sqlite+aiosqlite:///{data_dir / 'shoal.db'}")
        try:
            async with db.read() as session:
                user = await session.scalar(select(User).where(User.username == username))
                if user is not None:
                    session.expunge(user)
                return user
        finally:
            await db.close()

    return asyncio.run(query())


def test_user_create_and_invite(tmp_path: Path) -> None:
    env = {"SHOAL_DATA_DIR": str(tmp_path)}
    done = run("user", "create", "--admin", "boss", "--password", "boss-password", env=env)
    assert done.returncode == 0, done.stderr
    assert "created administrator boss" in done.stdout
    assert "boss-password" not in done.stdout

    done = run("user", "invite", "Jane.Doe@example.org", env=env)
    assert done.returncode == 0, done.stderr
    assert "invited jane.doe <Jane.Doe@example.org>" in done.stdout
    match = re.search(r"temporary password \(must be changed at first login\): (\S+)", done.stdout)
    assert match, done.stdout
    temporary = match.group(1)

    boss = load_user(tmp_path, "boss")
    assert (
        boss is not None and boss.role == Role.ADMIN and verify_password(boss.password_hash, "boss-password")
    )
    jane = load_user(tmp_path, "jane.doe")
    assert jane is not None and jane.role == Role.USER and jane.must_change_password
    assert jane.email == "Jane.Doe@example.org"
    assert verify_password(jane.password_hash, temporary)

    # The same address again is refused with a sentence, not a traceback.
    done = run("user", "invite", "jane.doe@example.org", "--name", "other", env=env)
    assert done.returncode == 1
    assert "already registered" in done.stderr and "Traceback" not in done.stderr
    assert load_user(tmp_path, "other") is None


def test_config_show_masks_secrets(tmp_path: Path) -> None:
    secrets = {
        "SHOAL_SECRET_KEY": "very-secret-key-value",
        "SHOAL_ADMIN_PASSWORD": "admin-pass-value",
        "SHOAL_DATABASE_URL": "postgresql://shoal:db-pass-value@db.internal/shoal",
        "SHOAL_S3_SECRET_KEY": "s3-secret-value",
    }
    done = run("config", "show", env={"SHOAL_DATA_DIR": str(tmp_path), **secrets})
    assert done.returncode == 0, done.stderr
    for name in ("very-secret-key-value", "admin-pass-value", "db-pass-value", "s3-secret-value"):
        assert name not in done.stdout and name not in done.stderr
    assert "db.internal" in done.stdout and "********" in done.stdout


def test_bad_setting_exits_2_naming_the_variable(tmp_path: Path) -> None:
    done = run("config", "show", env={"SHOAL_DATA_DIR": str(tmp_path), "SHOAL_REGISTRATION": "maybe"})
    assert done.returncode == 2
    assert "SHOAL_REGISTRATION" in done.stderr and "maybe" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "shoal.db").exists()
