"""Helpers for federation tests: polling, signed requests, the captured PeerTube/Mastodon documents."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from federation.signatures import sign_headers
from instance.models import Actor, Follow, WorkItem
from tests.conftest import Instance, InstanceFactory

# Real documents from PeerTube's and Mastodon's own tests (see data/peertube/INDEX.md).
AP_FIXTURES = Path(__file__).resolve().parent / "data" / "peertube"


@pytest.fixture
def ap_fixture() -> Callable[[str], Any]:
    """Load one of the captured ActivityPub documents by file name."""

    def load(name: str) -> Any:
        return json.loads((AP_FIXTURES / name).read_text())

    return load


async def wait_for(
    check: Callable[[], Awaitable[Any]], *, timeout: float = 60.0, what: str = "condition"
) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def signed_post(
    url: str,
    activity: dict[str, Any] | bytes,
    *,
    key_id: str,
    private_pem: str,
    tamper: Callable[[dict[str, str], bytes], tuple[dict[str, str], bytes]] | None = None,
    now: Any = None,
) -> tuple[int, Any]:
    """POST an activity signed like a remote server would; ``tamper`` may alter headers and body."""
    body = activity if isinstance(activity, bytes) else json.dumps(activity).encode()
    headers = {"Content-Type": "application/activity+json"}
    headers.update(sign_headers("POST", url, key_id=key_id, private_pem=private_pem, body=body, now=now))
    if tamper is not None:
        headers, body = tamper(headers, body)
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=io.BytesIO(body), headers=headers) as response:
            text = await response.text()
            try:
                return response.status, json.loads(text)
            except ValueError:
                return response.status, text


async def actor_row(shoal: Any, ap_id: str) -> Actor | None:
    """A stored actor by ActivityPub id."""
    async with shoal.db.read() as session:
        actor = await session.scalar(select(Actor).where(Actor.ap_id == ap_id))
        if actor is not None:
            session.expunge(actor)
        return actor


async def follow_state(shoal: Any, follower_ap_id: str, target_ap_id: str) -> str | None:
    """The state of the follow between two actors as ``shoal`` stores it, or None."""
    async with shoal.db.read() as session:
        follower = await session.scalar(select(Actor.id).where(Actor.ap_id == follower_ap_id))
        target = await session.scalar(select(Actor.id).where(Actor.ap_id == target_ap_id))
        if follower is None or target is None:
            return None
        return await session.scalar(
            select(Follow.state).where(Follow.follower_id == follower, Follow.target_id == target)
        )


async def work_rows(shoal: Any, kind: str) -> list[WorkItem]:
    """Every work row of ``kind``."""
    async with shoal.db.read() as session:
        rows = list(
            await session.scalars(select(WorkItem).where(WorkItem.kind == kind).order_by(WorkItem.id))
        )
        session.expunge_all()
        return rows


async def get_json(instance: Any, path: str, **kwargs: Any) -> tuple[int, Any]:
    """GET ``path`` on an instance and decode any JSON answer (activity+json, jrd+json …)."""
    async with instance.client.session.get(instance.url + path, **kwargs) as response:
        raw = await response.read()
        try:
            return response.status, json.loads(raw) if raw else None
        except ValueError:
            return response.status, raw.decode(errors="replace")


# ---------------------------------------------------------------- the captured PeerTube


@pytest.fixture
async def shoal(make_instance: InstanceFactory) -> Instance:
    """An instance with the account ``admin`` (channel ``admin_channel``) of the captured run."""
    instance = await make_instance("shoal")
    instance.admin = await instance.user_client("admin")  # type: ignore[attr-defined]
    return instance


@pytest.fixture
async def peertube(shoal: Instance) -> AsyncIterator[Any]:
    """The captured PeerTube, talking to ``shoal``, whose video (``.video``: published, public,
    no description) stands for the Shoal video of the run."""
    from tests.federation.peertube import RecordedPeerTube
    from tests.instance.test_videos import add_renditions, new_video

    video = await new_video(shoal, "admin", "Shoal clip A")
    await add_renditions(shoal, video)
    recorded = await RecordedPeerTube(shoal.url, video.uuid).start()
    recorded.video = video  # type: ignore[attr-defined]
    try:
        yield recorded
    finally:
        await recorded.close()
