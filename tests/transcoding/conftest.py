"""Fixtures for the transcoding tests: clips made once per session, and their HLS outputs.

Transcoding is the slow part, so each clip is transcoded once per session and every test
inspects that one result. Sync fixtures drive the async API with ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import transcoding
from tests import media


@dataclass
class Transcoded:
    """One clip after probe → plan → transcode_hls."""

    source: Path
    info: transcoding.MediaInfo
    plan: transcoding.Plan
    result: transcoding.HlsResult
    out_dir: Path
    progress: list[float] = field(default_factory=list)


def run_ffprobe(path: Path, *args: str) -> dict[str, Any]:
    """ffprobe's JSON for ``path`` (local files and local playlists only)."""
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-protocol_whitelist", "file", "-of", "json", *args, str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def transcode(source: Path, out_dir: Path, prefix: str, **settings: Any) -> Transcoded:
    """Probe, plan and transcode ``source`` into ``out_dir``, recording progress."""

    async def go() -> Transcoded:
        info = await transcoding.probe(source)
        plan = await transcoding.plan_hls(info, transcoding.LadderSettings(**settings))
        progress: list[float] = []

        async def on_progress(percent: float) -> None:
            progress.append(percent)

        result = await transcoding.transcode_hls(
            source, out_dir, plan, prefix=prefix, on_progress=on_progress, timeout=120
        )
        return Transcoded(source, info, plan, result, out_dir, progress)

    return asyncio.run(go())


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def ffprobe() -> Callable[..., dict[str, Any]]:
    return run_ffprobe


@pytest.fixture(scope="session")
def landscape(media_dir: Path) -> Path:
    return media.landscape_720p30(media_dir)


@pytest.fixture(scope="session")
def portrait(media_dir: Path) -> Path:
    return media.portrait(media_dir)


@pytest.fixture(scope="session")
def high_fps(media_dir: Path) -> Path:
    return media.high_fps_60(media_dir)


@pytest.fixture(scope="session")
def audio_only(media_dir: Path) -> Path:
    return media.audio_only(media_dir)


@pytest.fixture(scope="session")
def audio_with_cover(media_dir: Path) -> Path:
    return media.audio_with_cover(media_dir)


@pytest.fixture(scope="session", params=["copied", "encoded"])
def landscape_hls(
    request: pytest.FixtureRequest, landscape: Path, tmp_path_factory: pytest.TempPathFactory
) -> Transcoded:
    """The 720p clip with its top rung copied from the source (it is compliant), and the
    same with the copy turned off: every rung encoded."""
    copy = request.param == "copied"
    done = transcode(
        landscape, tmp_path_factory.mktemp(f"landscape-hls-{request.param}"), "land",
        copy_compliant_top=copy,
    )
    assert done.plan.copies_top is copy
    return done


@pytest.fixture(scope="session")
def portrait_hls(portrait: Path, tmp_path_factory: pytest.TempPathFactory) -> Transcoded:
    return transcode(portrait, tmp_path_factory.mktemp("portrait-hls"), "port")


@pytest.fixture(scope="session")
def high_fps_hls(high_fps: Path, tmp_path_factory: pytest.TempPathFactory) -> Transcoded:
    return transcode(high_fps, tmp_path_factory.mktemp("high-fps-hls"), "fast", heights=(720, 360))


@pytest.fixture(scope="session")
def audio_hls(audio_only: Path, tmp_path_factory: pytest.TempPathFactory) -> Transcoded:
    return transcode(audio_only, tmp_path_factory.mktemp("audio-hls"), "audio")


@pytest.fixture(scope="session")
def cover_hls(audio_with_cover: Path, tmp_path_factory: pytest.TempPathFactory) -> Transcoded:
    return transcode(audio_with_cover, tmp_path_factory.mktemp("cover-hls"), "cover")
