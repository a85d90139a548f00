"""The public links nginx follows: ``<storage>/public-hls/<uuid>`` -> ``../hls/<uuid>`` for exactly the
public, published, visible, local videos, kept by the services and repaired by a chore."""

from __future__ import annotations

import asyncio
import os
import time
import uuid as uuid_lib
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import update

from instance.app import CHORES, create_app
from instance.models import Privacy, Role, Video, VideoState
from instance.services.public_links import (
    PUBLIC_HLS,
    LinkRepair,
    public_links_dir,
    reconcile_public_links,
    sync_public_link,
)
from tests import media
from tests.conftest import Instance, InstanceFactory, free_port
from tests.instance.test_videos import login, new_video
from tests.support import PUBLISHED, upload, wait_done


async def local_instance(make_instance: InstanceFactory, tmp_path: Path, **overrides) -> Instance:
    """An instance on local storage in both test modes (the scaled backend defaults to S3)."""
    return await make_instance(
        storage_url=f"file://{tmp_path / 'files'}", transcoding_resolutions="240", **overrides
    )


def links_dir(instance: Instance) -> Path:
    return storage_root(instance) / PUBLIC_HLS


def storage_root(instance: Instance) -> Path:
    path = instance.shoal.storage.local_path("hls")
    assert path is not None
    return path.parent


def is_linked(instance: Instance, video_uuid: str) -> bool:
    link = links_dir(instance) / video_uuid
    return link.is_symlink() and os.readlink(link) == f"../hls/{video_uuid}"


async def linked_soon(instance: Instance, video_uuid: str, seconds: float = 10.0) -> bool:
    """The pipeline places the link just after the published state commits (which the API shows)."""
    deadline = time.monotonic() + seconds
    while not is_linked(instance, video_uuid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def entries(instance: Instance) -> set[str]:
    folder = links_dir(instance)
    return set(os.listdir(folder)) if folder.is_dir() else set()


async def test_link_follows_publish_privacy_hiding_and_deletion(
    make_instance: InstanceFactory, tmp_path: Path
) -> None:
    instance = await local_instance(make_instance, tmp_path)
    alice = await login(instance, "alice")
    mod = await login(instance, "mod", Role.MODERATOR)
    clip = media.make_clip(tmp_path, "clip.mp4", 320, 240, 30, 1.0)
    public_ref, private_ref = await asyncio.gather(
        upload(alice, clip, "Public"), upload(alice, clip, "Private", privacy=3)
    )
    video = await wait_done(alice, public_ref["id"])
    secret = await wait_done(alice, private_ref["id"])
    assert video["state"]["id"] == PUBLISHED and secret["state"]["id"] == PUBLISHED
    uuid = video["uuid"]

    # Published: the link exists and reaches the files the pipeline stored.
    assert await linked_soon(instance, uuid)
    master_name = video["streamingPlaylists"][0]["playlistUrl"].rsplit("/", 1)[1]
    through_link = links_dir(instance) / uuid / master_name
    assert through_link.read_bytes() == (storage_root(instance) / "hls" / uuid / master_name).read_bytes()
    # A private video's files never get one.
    assert entries(instance) == {uuid}

    # Unlisted stays public; private and internal close it at once; public opens it again.
    assert (await alice.put(f"/api/v1/videos/{uuid}", json={"privacy": 2}))[0] == 204
    assert is_linked(instance, uuid)
    assert (await alice.put(f"/api/v1/videos/{uuid}", json={"privacy": 3}))[0] == 204
    assert entries(instance) == set()
    assert (await alice.put(f"/api/v1/videos/{uuid}", json={"privacy": 1}))[0] == 204
    assert is_linked(instance, uuid)
    assert (await alice.put(f"/api/v1/videos/{uuid}", json={"privacy": 4}))[0] == 204
    assert entries(instance) == set()
    assert (await alice.put(f"/api/v1/videos/{uuid}", json={"privacy": 1}))[0] == 204
    assert is_linked(instance, uuid)
    # The private video made public gets its link, and loses it again.
    assert (await alice.put(f"/api/v1/videos/{secret['uuid']}", json={"privacy": 1}))[0] == 204
    assert entries(instance) == {uuid, secret["uuid"]}
    assert (await alice.put(f"/api/v1/videos/{secret['uuid']}", json={"privacy": 3}))[0] == 204
    assert entries(instance) == {uuid}

    # A refused change leaves the link alone.
    bob = await login(instance, "bob")
    assert (await bob.put(f"/api/v1/videos/{uuid}", json={"privacy": 3}))[0] == 403
    assert is_linked(instance, uuid)

    # Hidden by a moderator: gone; shown again: back.
    assert (await mod.post(f"/api/v1/videos/{uuid}/blacklist", json={"reason": "Spam"}))[0] == 204
    assert entries(instance) == set()
    assert (await mod.delete(f"/api/v1/videos/{uuid}/blacklist"))[0] == 204
    assert is_linked(instance, uuid)

    # Deleted: gone with its files.
    assert (await alice.delete(f"/api/v1/videos/{uuid}"))[0] == 204
    assert entries(instance) == set()
    assert not (storage_root(instance) / "hls" / uuid).exists()


async def test_channel_and_account_deletion_remove_links(
    make_instance: InstanceFactory, tmp_path: Path
) -> None:
    instance = await local_instance(make_instance, tmp_path)
    alice = await login(instance, "alice")
    await login(instance, "carol")
    status, body = await alice.post(
        "/api/v1/video-channels", json={"name": "second_channel", "displayName": "Second"}
    )
    assert status in (200, 201), body
    in_channel = await new_video(instance, "alice", "In the second channel", channel="second_channel")
    of_carol = await new_video(instance, "carol", "Carol's")
    kept = await new_video(instance, "alice", "Kept")
    for video in (in_channel, of_carol, kept):
        await sync_public_link(instance.shoal, video.uuid)
    assert entries(instance) == {in_channel.uuid, of_carol.uuid, kept.uuid}

    status, body = await alice.delete("/api/v1/video-channels/second_channel")
    assert status == 204, body
    assert entries(instance) == {of_carol.uuid, kept.uuid}

    carol = await instance.client.login("carol", "password123")
    status, body = await instance.client.as_user(carol).request(
        "DELETE", "/api/v1/users/me", json={"password": "password123"}
    )
    assert status == 204, body
    assert entries(instance) == {kept.uuid}


async def test_reconcile_adds_missing_removes_extra_and_junk(
    make_instance: InstanceFactory, tmp_path: Path
) -> None:
    instance = await local_instance(make_instance, tmp_path)
    shoal = instance.shoal
    await login(instance, "alice")
    public = await new_video(instance, "alice", "Public")
    unlisted = await new_video(instance, "alice", "Unlisted", privacy=Privacy.UNLISTED)
    private = await new_video(instance, "alice", "Private", privacy=Privacy.PRIVATE)
    internal = await new_video(instance, "alice", "Internal", privacy=Privacy.INTERNAL)
    processing = await new_video(instance, "alice", "Processing", state=VideoState.PROBED)
    hidden = await new_video(instance, "alice", "Hidden")
    remote = await new_video(instance, "alice", "Remote")
    async with shoal.db.write() as session:
        await session.execute(update(Video).where(Video.id == hidden.id).values(hidden=True))
        await session.execute(
            update(Video).where(Video.id == remote.id).values(remote_url="https://elsewhere.example/v/1")
        )
    folder = links_dir(instance)
    folder.mkdir(parents=True, exist_ok=True)
    # An extra link (a private video), a stale one (no such video), a link to somewhere else under
    # a video's name, a real folder under a public video's name, a stray file, a crashed writer's
    # old temporary link and one being written right now.
    os.symlink(f"../hls/{private.uuid}", folder / private.uuid)
    gone = str(uuid_lib.uuid4())
    os.symlink(f"../hls/{gone}", folder / gone)
    os.symlink("../originals", folder / unlisted.uuid)
    (folder / public.uuid).mkdir()
    (folder / public.uuid / "master.m3u8").write_text("#EXTM3U\n")
    (folder / "notes.txt").write_text("junk")
    os.symlink("../hls", folder / "hls")
    os.symlink(f"../hls/{public.uuid}", folder / f".link-{public.uuid}-old")
    old = time.time() - 3600
    os.utime(folder / f".link-{public.uuid}-old", (old, old), follow_symlinks=False)
    os.symlink(f"../hls/{public.uuid}", folder / f".link-{public.uuid}-new")

    repair = await reconcile_public_links(shoal)
    assert entries(instance) == {public.uuid, unlisted.uuid, f".link-{public.uuid}-new"}
    assert is_linked(instance, public.uuid) and is_linked(instance, unlisted.uuid)
    assert repair == LinkRepair(added=2, removed=2, junk=5), repair
    for video in (private, internal, processing, hidden, remote):
        assert not (folder / video.uuid).is_symlink()
    assert await reconcile_public_links(shoal) == LinkRepair()

    # A link removed behind Shoal's back comes back; the folder itself may go too.
    os.unlink(folder / public.uuid)
    assert await reconcile_public_links(shoal) == LinkRepair(added=1)
    assert is_linked(instance, public.uuid)
    for name in os.listdir(folder):
        os.unlink(folder / name)
    folder.rmdir()
    assert await reconcile_public_links(shoal) == LinkRepair(added=2)
    assert entries(instance) == {public.uuid, unlisted.uuid}


async def test_reconcile_runs_at_start_and_every_minute(
    make_instance: InstanceFactory, tmp_path: Path
) -> None:
    instance = await local_instance(make_instance, tmp_path)
    await login(instance, "alice")
    video = await new_video(instance, "alice", "Created behind the services' back")
    assert entries(instance) == set()
    chores = {chore.name: chore for chore in instance.app[CHORES]}
    assert chores["reconcile_public_links"].interval == 60.0
    assert chores["reconcile_public_links"].run is reconcile_public_links
    # A second process over the same database and storage starts: its first act repairs the links.
    server = TestServer(create_app(instance.settings), host="127.0.0.1", port=free_port())
    await server.start_server()
    try:
        assert entries(instance) == {video.uuid}
    finally:
        await server.close()


async def test_concurrent_reconciles_and_syncs_agree(
    make_instance: InstanceFactory, tmp_path: Path
) -> None:
    """Several passes at once (as several processes do): no error, and the same end state."""
    instance = await local_instance(make_instance, tmp_path)
    shoal = instance.shoal
    await login(instance, "alice")
    videos = [await new_video(instance, "alice", f"Video {i}") for i in range(12)]
    closed = {video.uuid for video in videos[::3]}
    async with shoal.db.write() as session:
        await session.execute(
            update(Video).where(Video.uuid.in_(closed)).values(privacy=Privacy.PRIVATE)
        )
    for video in videos[::3]:
        os.makedirs(links_dir(instance), exist_ok=True)
        os.symlink(f"../hls/{video.uuid}", links_dir(instance) / video.uuid)
    for _ in range(3):
        await asyncio.gather(
            *(reconcile_public_links(shoal) for _ in range(4)),
            *(sync_public_link(shoal, video.uuid) for video in videos),
        )
        assert entries(instance) == {video.uuid for video in videos} - closed


@pytest.mark.scaled_only
async def test_no_links_with_s3_storage(make_instance: InstanceFactory, tmp_path: Path) -> None:
    """The scaled test backend stores in S3 (moto): nothing is ever linked, nothing is created."""
    instance = await make_instance()
    shoal = instance.shoal
    assert instance.settings.effective_storage_url.startswith("s3://")
    assert public_links_dir(shoal) is None
    await login(instance, "alice")
    video = await new_video(instance, "alice", "On S3")
    await sync_public_link(shoal, video.uuid)
    assert await reconcile_public_links(shoal) == LinkRepair()
    assert not [path for path in tmp_path.rglob(PUBLIC_HLS)]
