"""``shoal upload`` sends a file over the REST API and shows upload and processing progress."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from tests import media
from tests.conftest import Instance

SHOAL = str(Path(sys.executable).parent / "shoal")


async def test_cli_upload_shows_progress_and_publishes(instance: Instance, tmp_path: Path) -> None:
    await instance.create_user("carol", password="password123")
    clip = media.landscape_720p30(tmp_path)
    argv = [
        SHOAL,
        "upload",
        str(clip),
        "--url",
        instance.url,
        "-u",
        "carol",
        "-p",
        "password123",
        "--name",
        "From the command line",
    ]
    result = await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "upload" in result.stdout and "100.0%" in result.stdout
    assert "transcoding" in result.stdout and "published: " in result.stdout
    _, listing = await instance.client.get("/api/v1/videos")
    assert [v["name"] for v in listing["data"]] == ["From the command line"]


async def test_cli_upload_reports_a_refusal(instance: Instance, tmp_path: Path) -> None:
    await instance.create_user("carol", password="password123")
    clip = media.landscape_720p30(tmp_path)
    argv = [SHOAL, "upload", str(clip), "--url", instance.url, "-u", "carol", "-p", "wrong-password"]
    result = await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "invalid" in result.stderr.lower()
