"""`shoal doctor` against real deployments: a healthy one passes, broken ones say what to fix."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from instance.core import open_shoal
from instance.doctor import diagnose, report
from tests.conftest import SCALED, free_port

SHOAL = str(Path(sys.executable).parent / "shoal")


def by_name(findings: list) -> dict:
    return {f.name: f for f in findings}


async def test_a_running_instance_is_healthy(make_instance) -> None:
    instance = await make_instance()
    async with open_shoal(instance.settings) as shoal:
        findings = await diagnose(shoal, timeout=30)
    text = report(findings)
    assert all(f.ok for f in findings), text
    found = by_name(findings)
    assert "migrated" in found["database"].detail
    assert "write, read back and delete" in found["storage"].detail
    assert "libx264" in found["ffmpeg"].detail
    assert "answers 200" in found["public URL"].detail
    if SCALED:
        assert "noop job done" in found["job queue"].detail
        assert not found["clock"].skipped and not found["Redis"].skipped
    else:
        assert found["job queue"].skipped and found["clock"].skipped
    assert text.endswith("everything looks fine")


@pytest.mark.scaled_only
async def test_no_worker_is_reported(make_instance) -> None:
    instance = await make_instance(worker=False)
    async with open_shoal(instance.settings) as shoal:
        findings = await diagnose(shoal, timeout=5, skip=("ffmpeg", "storage"))
    jobs = by_name(findings)["job queue"]
    assert not jobs.ok and "shoal worker" in jobs.detail and "start workers" in jobs.fix


def test_cli_reports_problems_with_fixes_and_exits_1(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")},
        "SHOAL_DATA_DIR": str(tmp_path / "data"),
        "SHOAL_PUBLIC_URL": f"http://127.0.0.1:{free_port()}",
        "SHOAL_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "SHOAL_STORAGE_URL": "file:///proc/shoal-cannot-write-here",
    }
    result = subprocess.run(
        [SHOAL, "doctor", "--timeout", "5", "--skip", "ffmpeg"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert "[FAIL] database: the database is at revision (empty)" in out
    assert "fix: run `shoal db upgrade`" in out
    assert "[FAIL] Redis: cannot reach Redis" in out
    assert "[FAIL] storage:" in out
    assert "[FAIL] public URL:" in out
    assert "[ok  ] ffmpeg: skipped" in out
    assert out.rstrip().endswith("problem(s) found")


def test_cli_healthy_embedded_exits_0(tmp_path: Path) -> None:
    """A migrated embedded data dir with a running `shoal serve` passes; the command is registered."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")},
        "SHOAL_DATA_DIR": str(tmp_path / "data"),
        "SHOAL_LISTEN": f"127.0.0.1:{port}",
        "SHOAL_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    serve = subprocess.Popen([SHOAL, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        result = None
        for _ in range(100):
            result = subprocess.run([SHOAL, "doctor"], env=env, capture_output=True, text=True, timeout=120)
            if result.returncode == 0 or serve.poll() is not None:
                break
            time.sleep(0.3)
        assert result is not None and result.returncode == 0, result.stdout if result else None
        assert "everything looks fine" in result.stdout
    finally:
        serve.terminate()
        serve.wait(timeout=20)


async def test_unfinished_rows_with_no_job_are_reported(make_instance) -> None:
    """A video left transcoding with no job on it (a crash before its job was written) is
    found; one whose job is still open is not, nor a fresh one."""
    from datetime import timedelta

    from sqlalchemy import update

    from instance.jobs import add_work
    from instance.models import Video, VideoState, utcnow
    from tests.instance.test_videos import new_video

    instance = await make_instance()
    await instance.create_user("alice")
    working = await new_video(instance, "alice", "Being processed", state=VideoState.PROBED)
    stuck = await new_video(instance, "alice", "Left behind", state=VideoState.PROBED)
    await new_video(instance, "alice", "Just received", state=VideoState.RECEIVED)
    shoal = instance.shoal
    async with shoal.db.write() as session:
        long_ago = utcnow() - timedelta(hours=1)
        await session.execute(
            update(Video).where(Video.id.in_([working.id, stuck.id])).values(state_changed_at=long_ago)
        )
        await add_work(shoal, session, "process_video", str(working.id), delay=3600)

    async with open_shoal(instance.settings) as fresh:
        found = by_name(await diagnose(fresh, timeout=5, skip=("ffmpeg", "storage", "public-url")))
    assert not found["unfinished rows"].ok and "1 video(s)" in found["unfinished rows"].detail
    async with shoal.db.write() as session:
        await session.execute(update(Video).where(Video.id == stuck.id).values(state=VideoState.FAILED))
    async with open_shoal(instance.settings) as fresh:
        found = by_name(await diagnose(fresh, timeout=5, skip=("ffmpeg", "storage", "public-url")))
    assert found["unfinished rows"].ok, found["unfinished rows"].detail
