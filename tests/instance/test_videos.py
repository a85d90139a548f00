"""Videos over HTTP: PeerTube's JSON shapes, id forms, lists, edits, roles, deletion, hiding.

The helpers at the top (``new_video``, ``add_renditions``, ``login``) are shared by the
other API test modules.
"""

from __future__ import annotations

import re
import uuid as uuid_lib
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from instance.models import Actor, ActorKind, Privacy, Rendition, Role, User, Video, VideoState
from instance.services.videos import add_video
from tests.conftest import ApiClient, Instance

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


async def login(instance: Instance, name: str, role: Role = Role.USER) -> ApiClient:
    """A new user with its account and default channel, logged in through OAuth."""
    return await instance.user_client(name, role=role)


async def new_video(
    instance: Instance,
    owner: str,
    name: str = "A test video",
    *,
    channel: str | None = None,
    state: VideoState = VideoState.PUBLISHED,
    **fields: Any,
) -> Video:
    """A video in ``owner``'s default channel (or ``channel``), created through the service."""
    shoal = instance.shoal
    async with shoal.db.write() as session:
        actor = await session.scalar(
            select(Actor).where(
                Actor.kind == ActorKind.GROUP, Actor.preferred_username == (channel or f"{owner}_channel")
            )
        )
        assert actor is not None
        return await add_video(shoal, session, actor, name=name, state=state, **fields)


async def add_renditions(instance: Instance, video: Video, heights: tuple[int, ...] = (720, 360)) -> None:
    """Rendition rows as the pipeline writes them (keys under ``hls/<uuid>/``)."""
    async with instance.shoal.db.write() as session:
        row = await session.get(Video, video.id)
        row.master_playlist = f"hls/{video.uuid}/abc-master.m3u8"
        row.segments_sha256 = f"hls/{video.uuid}/abc-segments-sha256.json"
        row.thumbnail = f"thumbnails/{video.uuid}.jpg"
        row.preview = f"previews/{video.uuid}.jpg"
        for height in heights:
            session.add(
                Rendition(
                    video_id=video.id,
                    height=height,
                    width=height * 16 // 9,
                    fps=29.97,
                    bitrate=1000,
                    playlist_path=f"hls/{video.uuid}/f-{height}.m3u8",
                    file_path=f"hls/{video.uuid}/f-{height}-fragmented.mp4",
                    size=1000 * height,
                    torrent_path=f"torrents/{video.uuid}-{height}-hls.torrent",
                    info_hash=f"{height:040x}",
                )
            )


# ---------------------------------------------------------------- shapes

VIDEO_KEYS: dict[str, type | tuple[type, ...]] = {
    "id": int,
    "uuid": str,
    "shortUUID": str,
    "url": str,
    "name": str,
    "category": dict,
    "licence": dict,
    "language": dict,
    "privacy": dict,
    "description": (str, type(None)),
    "duration": int,
    "isLocal": bool,
    "isLive": bool,
    "thumbnailPath": (str, type(None)),
    "previewPath": (str, type(None)),
    "embedPath": str,
    "views": int,
    "likes": int,
    "dislikes": int,
    "nsfw": bool,
    "waitTranscoding": bool,
    "state": dict,
    "progress": int,
    "failureReason": (str, type(None)),
    "failureCode": (str, type(None)),
    "createdAt": str,
    "updatedAt": str,
    "publishedAt": (str, type(None)),
    "originallyPublishedAt": (str, type(None)),
    "account": dict,
    "channel": dict,
    "blacklisted": bool,
}
DETAILS_KEYS: dict[str, type | tuple[type, ...]] = {
    **VIDEO_KEYS,
    "support": (str, type(None)),
    "descriptionPath": str,
    "tags": list,
    "commentsEnabled": bool,
    "downloadEnabled": bool,
    "trackerUrls": list,
    "files": list,
    "streamingPlaylists": list,
}
SUMMARY_KEYS = {"id": int, "name": str, "displayName": str, "url": str, "host": str, "avatars": list}
FILE_KEYS = {
    "resolution": dict,
    "fileUrl": str,
    "fileDownloadUrl": str,
    "size": int,
    "fps": int,
    "torrentUrl": str,
    "torrentDownloadUrl": str,
    "magnetUri": str,
    "playlistUrl": str,
    "metadataUrl": str,
}


def assert_keys(data: dict[str, Any], keys: dict[str, Any], where: str) -> None:
    missing = sorted(set(keys) - set(data))
    assert not missing, f"{where}: missing {missing}"
    wrong = {k: type(data[k]).__name__ for k, t in keys.items() if not isinstance(data[k], t)}
    assert not wrong, f"{where}: wrong types {wrong}"


async def test_video_details_have_peertube_fields(instance: Instance) -> None:
    await instance.create_user("alice")
    video = await new_video(
        instance,
        "alice",
        "Gardening 101",
        description="How to **grow** things",
        tags=["garden", "Flowers"],
        category=15,
        licence=1,
        language="en",
        duration=95.4,
        support="Tip jar",
    )
    await add_renditions(instance, video)
    status, body = await instance.client.get(f"/api/v1/videos/{video.uuid}")
    assert status == 200, body
    assert_keys(body, DETAILS_KEYS, "details")
    assert body["id"] == video.id and body["uuid"] == video.uuid and body["shortUUID"] == video.short_uuid
    assert body["url"] == f"{instance.url}/videos/watch/{video.uuid}"
    assert body["embedPath"] == f"/videos/embed/{video.uuid}"
    assert body["thumbnailPath"] == f"/lazy-static/thumbnails/{video.uuid}.jpg"
    assert body["previewPath"] == f"/lazy-static/previews/{video.uuid}.jpg"
    assert body["category"] == {"id": 15, "label": "Science & Technology"}
    assert body["licence"] == {"id": 1, "label": "Attribution"}
    assert body["language"] == {"id": "en", "label": "English"}
    assert body["privacy"] == {"id": 1, "label": "Public"}
    assert body["state"] == {"id": 1, "label": "Published"} and body["progress"] == 100
    assert body["duration"] == 95 and body["isLive"] is False and body["isLocal"] is True
    assert body["tags"] == ["garden", "Flowers"] and body["support"] == "Tip jar"
    assert body["descriptionPath"] == f"/api/v1/videos/{video.uuid}/description"
    for key in ("createdAt", "updatedAt", "publishedAt"):
        assert ISO.match(body[key]), (key, body[key])
    host = instance.url.removeprefix("http://")
    for key in ("account", "channel"):
        assert_keys(body[key], SUMMARY_KEYS, key)
        assert body[key]["host"] == host
    assert body["account"]["name"] == "alice" and body["account"]["userId"] is not None
    assert body["channel"]["name"] == "alice_channel"
    assert body["channel"]["ownerAccount"]["name"] == "alice"
    assert body["files"] == []
    assert body["trackerUrls"] == [f"ws://{host}/tracker/socket", f"{instance.url}/tracker/announce"]
    [playlist] = body["streamingPlaylists"]
    assert playlist["type"] == 1 and playlist["redundancies"] == []
    base = f"{instance.url}/static/streaming-playlists/hls/{video.uuid}/"
    assert playlist["playlistUrl"] == base + "abc-master.m3u8"
    assert playlist["segmentsSha256Url"] == base + "abc-segments-sha256.json"
    assert [f["resolution"] for f in playlist["files"]] == [
        {"id": 720, "label": "720p"},
        {"id": 360, "label": "360p"},
    ]
    first = playlist["files"][0]
    assert_keys(first, FILE_KEYS, "file")
    assert first["fileUrl"] == base + "f-720-fragmented.mp4"
    assert first["playlistUrl"] == base + "f-720.m3u8"
    assert first["fps"] == 30 and first["size"] == 720_000
    assert first["magnetUri"].startswith("magnet:?") and f"urn:btih:{720:040x}" in first["magnetUri"]

    status, listing = await instance.client.get("/api/v1/videos")
    assert status == 200 and listing["total"] == 1
    assert_keys(listing["data"][0], VIDEO_KEYS, "list item")
    assert "streamingPlaylists" not in listing["data"][0]

    status, desc = await instance.client.get(f"/api/v1/videos/{video.short_uuid}/description")
    assert status == 200 and desc == {"description": "How to **grow** things"}


async def test_unprocessed_video_has_state_progress_and_no_playlists(instance: Instance) -> None:
    alice = await login(instance, "alice")
    processing = await new_video(
        instance, "alice", "Still encoding", state=VideoState.PROBED, progress=40
    )
    failed = await new_video(
        instance,
        "alice",
        "Broken upload",
        state=VideoState.FAILED,
        failure_code="invalid_media",
        failure_reason="Not a video file.",
    )
    status, body = await alice.get(f"/api/v1/videos/{processing.id}")
    assert status == 200, body
    assert body["state"] == {"id": 2, "label": "To transcode"} and body["progress"] == 40
    assert body["streamingPlaylists"] == [] and body["publishedAt"] is None
    status, body = await alice.get(f"/api/v1/videos/{failed.id}")
    assert body["state"]["id"] == 7 and body["failureReason"] == "Not a video file."
    assert body["failureCode"] == "invalid_media"


# ---------------------------------------------------------------- ids


async def test_video_id_forms(instance: Instance) -> None:
    await instance.create_user("alice")
    video = await new_video(instance, "alice")
    for ident in (str(video.id), video.uuid, video.uuid.upper(), video.short_uuid):
        status, body = await instance.client.get(f"/api/v1/videos/{ident}")
        assert status == 200 and body["id"] == video.id, (ident, body)
    for ident in ("12ab!", "0xff", "ab-cd", "%C3%BC", "1O0l", "a" * 40, "-1"):
        status, body = await instance.client.get(f"/api/v1/videos/{ident}")
        assert status == 400, (ident, status, body)
        assert body["code"] == "invalid_id" and body["field"] == "id"
    for ident in ("999999", "99999999999999999999"[:19], str(uuid_lib.uuid4()), "3yW3tn6Ab4pPd8u1XKq9Kz"):
        status, body = await instance.client.get(f"/api/v1/videos/{ident}")
        assert status == 404 and body["code"] == "video_not_found", (ident, body)


# ---------------------------------------------------------------- lists


async def test_list_pagination_and_sort(instance: Instance) -> None:
    await instance.create_user("alice")
    now = datetime.now(UTC)
    made = []
    for index, (name, views) in enumerate([("Charlie", 5), ("alpha", 50), ("Bravo", 1), ("delta", 20)]):
        made.append(
            await new_video(
                instance, "alice", name, views=views, published_at=now - timedelta(hours=10 - index)
            )
        )
    client = instance.client

    async def names(query: str) -> list[str]:
        status, body = await client.get(f"/api/v1/videos?{query}")
        assert status == 200, body
        assert body["total"] == 4
        return [item["name"] for item in body["data"]]

    assert await names("") == ["delta", "Bravo", "alpha", "Charlie"]  # -publishedAt by default
    assert await names("sort=publishedAt") == ["Charlie", "alpha", "Bravo", "delta"]
    assert await names("sort=-views") == ["alpha", "delta", "Charlie", "Bravo"]
    assert await names("sort=views") == ["Bravo", "Charlie", "delta", "alpha"]
    assert await names("sort=-trending") == ["alpha", "delta", "Charlie", "Bravo"]
    assert await names("sort=createdAt") == ["Charlie", "alpha", "Bravo", "delta"]
    assert await names("sort=-createdAt") == ["delta", "Bravo", "alpha", "Charlie"]
    assert sorted(await names("sort=name")) == sorted(await names("sort=-name"))
    assert (await names("sort=name"))[::-1] == await names("sort=-name")
    assert await names("sort=-views&start=1&count=2") == ["delta", "Charlie"]
    assert await names("sort=-views&start=4") == []
    status, body = await client.get("/api/v1/videos?count=0")
    assert status == 200 and body == {"total": 4, "data": []}
    for bad, field in [
        ("sort=-color", "sort"),
        ("count=101", "count"),
        ("start=-1", "start"),
        ("count=ten", "count"),
        ("nsfw=maybe", "nsfw"),
        ("categoryOneOf=x", "categoryOneOf"),
        ("privacyOneOf=7", "privacyOneOf"),
        ("start=99999999999999999999", "start"),
        ("search=a%00b", "search"),
    ]:
        status, body = await client.get(f"/api/v1/videos?{bad}")
        assert status == 400, (bad, status, body)
        assert body["field"].startswith(field), (bad, body)


async def test_list_filters(instance: Instance) -> None:
    await instance.create_user("alice")
    a = await new_video(
        instance, "alice", "Cats at 100% speed", category=16, licence=1, language="fr", tags=["cats"]
    )
    b = await new_video(instance, "alice", "Dogs_and cats", category=16, tags=["Dogs", "Cats"], nsfw=True)
    c = await new_video(
        instance, "alice", "Guitar lesson", category=1, licence=2, language="en", tags=["music"]
    )
    d = await new_video(instance, "alice", "Remote video", remote_url="https://other.example/videos/watch/1")
    await add_renditions(instance, c)
    client = instance.client

    async def ids(query: str) -> set[int]:
        status, body = await client.get(f"/api/v1/videos?{query}")
        assert status == 200, (query, body)
        assert body["total"] == len(body["data"])
        return {item["id"] for item in body["data"]}

    assert await ids("") == {a.id, b.id, c.id, d.id}
    assert await ids("isLocal=true") == {a.id, b.id, c.id}
    assert await ids("isLocal=false") == {d.id}
    assert await ids("nsfw=false") == {a.id, c.id, d.id}
    assert await ids("nsfw=true") == {b.id}
    assert await ids("nsfw=both") == {a.id, b.id, c.id, d.id}
    assert await ids("categoryOneOf=16") == {a.id, b.id}
    assert await ids("categoryOneOf[]=1&categoryOneOf[]=16") == {a.id, b.id, c.id}
    assert await ids("categoryOneOf=1,16") == {a.id, b.id, c.id}
    assert await ids("licenceOneOf=2") == {c.id}
    assert await ids("languageOneOf=fr&languageOneOf=en") == {a.id, c.id}
    assert await ids("languageOneOf=_unknown") == {b.id, d.id}
    assert await ids("tagsOneOf=cats") == {a.id, b.id}
    assert await ids("tagsOneOf=DOGS&tagsOneOf=music") == {b.id, c.id}
    assert await ids("tagsAllOf=cats&tagsAllOf=dogs") == {b.id}
    assert await ids("tagsAllOf=cats&tagsAllOf=music") == set()
    assert await ids("search=CATS") == {a.id, b.id}
    assert await ids("search=100%25") == {a.id}
    assert await ids("search=s_a") == {b.id}
    assert await ids("search=nothing-like-this") == set()
    assert await ids("hasHLSFiles=true") == {c.id}
    assert await ids("hasHLSFiles=false") == {a.id, b.id, d.id}
    assert await ids("categoryOneOf=16&nsfw=false&search=cats") == {a.id}
    status, body = await client.get("/api/v1/videos?skipCount=true&count=1&sort=name")
    assert status == 200 and len(body["data"]) == 1

    # A user whose NSFW policy is "do_not_list" gets no NSFW videos unless asking for them.
    prude = await login(instance, "prude")
    async with instance.shoal.db.write() as session:
        await session.execute(update(User).where(User.username == "prude").values(nsfw_policy="do_not_list"))
    status, body = await prude.get("/api/v1/videos")
    assert {item["id"] for item in body["data"]} == {a.id, c.id, d.id}
    status, body = await prude.get("/api/v1/videos?nsfw=both")
    assert {item["id"] for item in body["data"]} == {a.id, b.id, c.id, d.id}


# ---------------------------------------------------------------- edits and roles


async def test_owner_updates_video(instance: Instance) -> None:
    alice = await login(instance, "alice")
    video = await new_video(instance, "alice", tags=["old"])
    changes = {
        "name": "  A better title ",
        "description": "New words",
        "privacy": 2,
        "category": 2,
        "licence": 7,
        "language": "de",
        "tags": ["one", "two", "ONE"],
        "nsfw": True,
        "commentsEnabled": False,
        "downloadEnabled": False,
        "support": "Send tea",
        "waitTranscoding": False,
        "originallyPublishedAt": "2001-02-03T04:05:06Z",
    }
    status, body = await alice.put(f"/api/v1/videos/{video.short_uuid}", json=changes)
    assert status == 204, body
    status, body = await alice.get(f"/api/v1/videos/{video.id}")
    assert body["name"] == "A better title" and body["description"] == "New words"
    assert body["privacy"]["id"] == 2 and body["category"]["id"] == 2 and body["licence"]["id"] == 7
    assert body["language"]["id"] == "de" and body["tags"] == ["one", "two"]
    assert body["nsfw"] is True and body["commentsEnabled"] is False and body["downloadEnabled"] is False
    assert body["support"] == "Send tea" and body["waitTranscoding"] is False
    assert body["originallyPublishedAt"] == "2001-02-03T04:05:06.000Z"
    status, _ = await alice.put(f"/api/v1/videos/{video.id}", json={"category": None, "language": None})
    assert status == 204
    status, body = await alice.get(f"/api/v1/videos/{video.id}")
    assert body["category"] == {"id": None, "label": "Unknown"} and body["language"]["id"] is None
    assert body["name"] == "A better title"


async def test_update_validation_names_the_field(instance: Instance) -> None:
    alice = await login(instance, "alice")
    video = await new_video(instance, "alice")
    cases = [
        ({"name": "ab"}, "name"),
        ({"name": "x" * 121}, "name"),
        ({"name": None}, "name"),
        ({"name": 12345}, "name"),
        ({"description": "d" * 10_001}, "description"),
        ({"privacy": 9}, "privacy"),
        ({"privacy": "public"}, "privacy"),
        ({"category": 999}, "category"),
        ({"licence": 99}, "licence"),
        ({"language": "klingon"}, "language"),
        ({"tags": ["a"]}, "tags"),
        ({"tags": ["ok", "t" * 31]}, "tags"),
        ({"tags": ["t1", "t2", "t3", "t4", "t5", "t6"]}, "tags"),
        ({"tags": "notalist"}, "tags"),
        ({"nsfw": "maybe"}, "nsfw"),
        ({"commentsEnabled": None}, "commentsEnabled"),
        ({"originallyPublishedAt": "yesterday"}, "originallyPublishedAt"),
        ({"colour": "red"}, "colour"),
        ({"name": "bad\u0000name"}, "name"),
        ({"channelId": 99999}, "channelId"),
        ({"category": 10**30}, "category"),
    ]
    for payload, field in cases:
        status, body = await alice.put(f"/api/v1/videos/{video.id}", json=payload)
        assert status == 400, (payload, status, body)
        assert body["field"].split(".")[0] == field, (payload, body)
    status, body = await alice.put(
        f"/api/v1/videos/{video.id}", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert status == 400 and body["code"] == "malformed_json"
    status, body = await alice.get(f"/api/v1/videos/{video.id}")
    assert body["name"] == "A test video"


async def test_roles_on_edit_and_delete(instance: Instance) -> None:
    await instance.create_user("alice")
    bob = await login(instance, "bob")
    mod = await login(instance, "mod", Role.MODERATOR)
    admin = await login(instance, "boss", Role.ADMIN)
    one = await new_video(instance, "alice", "First one")
    two = await new_video(instance, "alice", "Second one")
    secret = await new_video(instance, "alice", "Private one", privacy=Privacy.PRIVATE)

    status, body = await instance.client.put(f"/api/v1/videos/{one.id}", json={"name": "Anonymous edit"})
    assert status == 401
    status, body = await bob.put(f"/api/v1/videos/{one.id}", json={"name": "Bob was here"})
    assert status == 403 and body["code"] == "not_owner"
    status, body = await bob.delete(f"/api/v1/videos/{one.id}")
    assert status == 403 and body["code"] == "not_owner"
    # A video bob cannot see is not found, not forbidden: its existence does not leak.
    status, body = await bob.put(f"/api/v1/videos/{secret.id}", json={"name": "Bob was here"})
    assert status == 404 and body["code"] == "video_not_found"
    status, body = await bob.delete(f"/api/v1/videos/{secret.id}")
    assert status == 404

    status, _ = await mod.put(f"/api/v1/videos/{one.id}", json={"name": "Moderated title"})
    assert status == 204
    status, _ = await admin.put(f"/api/v1/videos/{secret.id}", json={"nsfw": True})
    assert status == 204
    status, _ = await mod.delete(f"/api/v1/videos/{one.id}")
    assert status == 204
    status, _ = await admin.delete(f"/api/v1/videos/{two.id}")
    assert status == 204
    for video in (one, two):
        status, body = await instance.client.get(f"/api/v1/videos/{video.id}")
        assert status == 404


async def test_move_video_to_another_own_channel(instance: Instance) -> None:
    alice = await login(instance, "alice")
    await instance.create_user("bob")
    video = await new_video(instance, "alice")
    status, created = await alice.post(
        "/api/v1/video-channels", json={"name": "alice_music", "displayName": "M"}
    )
    assert status == 200, created
    status, _ = await alice.put(
        f"/api/v1/videos/{video.id}", json={"channelId": created["videoChannel"]["id"]}
    )
    assert status == 204
    status, body = await alice.get(f"/api/v1/videos/{video.id}")
    assert body["channel"]["name"] == "alice_music"
    status, bob_channel = await instance.client.get("/api/v1/video-channels/bob_channel")
    status, body = await alice.put(f"/api/v1/videos/{video.id}", json={"channelId": bob_channel["id"]})
    assert status == 400 and body["field"] == "channelId"


async def test_delete_removes_files_from_storage(instance: Instance) -> None:
    alice = await login(instance, "alice")
    video = await new_video(instance, "alice", storyboard={"key": "storyboards/sb-1.jpg", "spriteWidth": 192})
    await add_renditions(instance, video)
    other = await new_video(instance, "alice", "Keep me")
    storage = instance.shoal.storage
    mine = [
        f"hls/{video.uuid}/abc-master.m3u8",
        f"hls/{video.uuid}/f-720-fragmented.mp4",
        f"originals/{video.uuid}/upload.mp4",
        f"thumbnails/{video.uuid}.jpg",
        f"previews/{video.uuid}.jpg",
        "storyboards/sb-1.jpg",
        f"torrents/{video.uuid}-720-hls.torrent",
    ]
    kept = [f"hls/{other.uuid}/x-master.m3u8", f"originals/{other.uuid}/upload.mp4", "thumbnails/other.jpg"]
    for key in mine + kept:
        await storage.put_bytes(key, b"data")
    status, _ = await alice.delete(f"/api/v1/videos/{video.uuid}")
    assert status == 204
    for key in mine:
        assert not await storage.exists(key), key
    for key in kept:
        assert await storage.exists(key), key
    status, _ = await alice.get(f"/api/v1/videos/{video.uuid}")
    assert status == 404
    async with instance.shoal.db.read() as session:
        assert await session.scalar(select(Rendition.id).where(Rendition.video_id == video.id)) is None
    status, _ = await alice.delete(f"/api/v1/videos/{video.uuid}")
    assert status == 404


async def test_moderators_hide_and_unhide(instance: Instance) -> None:
    alice = await login(instance, "alice")
    bob = await login(instance, "bob")
    mod = await login(instance, "mod", Role.MODERATOR)
    video = await new_video(instance, "alice")
    status, body = await bob.post(f"/api/v1/videos/{video.id}/blacklist", json={"reason": "I dislike it"})
    assert status == 403 and body["code"] == "insufficient_role"
    status, body = await alice.post(f"/api/v1/videos/{video.id}/blacklist", json={})
    assert status == 403
    status, body = await mod.post(f"/api/v1/videos/{video.id}/blacklist", json={"reason": "Spam"})
    assert status == 204, body
    status, body = await mod.post(f"/api/v1/videos/{video.id}/blacklist", json={"reason": "Spam, really"})
    assert status == 204
    status, _ = await bob.get(f"/api/v1/videos/{video.id}")
    assert status == 404
    status, body = await instance.client.get("/api/v1/videos")
    assert body["total"] == 0
    status, body = await alice.get(f"/api/v1/videos/{video.id}")
    assert status == 200 and body["blacklisted"] is True and body["blacklistedReason"] == "Spam, really"
    status, body = await mod.post(f"/api/v1/videos/{video.id}/blacklist", json={"reason": "r" * 301})
    assert status == 400 and body["field"] == "reason"
    status, _ = await bob.delete(f"/api/v1/videos/{video.id}/blacklist")
    assert status == 403
    status, _ = await mod.delete(f"/api/v1/videos/{video.id}/blacklist")
    assert status == 204
    status, body = await bob.get(f"/api/v1/videos/{video.id}")
    assert status == 200 and body["blacklisted"] is False and body["blacklistedReason"] is None
    status, body = await mod.post("/api/v1/videos/0x1/blacklist", json={})
    assert status == 400 and body["code"] == "invalid_id"


async def test_my_videos_lists_every_state_and_privacy(instance: Instance) -> None:
    alice = await login(instance, "alice")
    bob = await login(instance, "bob")
    await new_video(instance, "alice", "Public one")
    await new_video(instance, "alice", "Private one", privacy=Privacy.PRIVATE)
    await new_video(instance, "alice", "Encoding one", state=VideoState.PROBED, progress=55)
    await new_video(instance, "alice", "Failed one", state=VideoState.FAILED, failure_reason="Corrupt file.")
    await new_video(instance, "bob", "Bob's one")
    status, body = await alice.get("/api/v1/users/me/videos")
    assert status == 200, body
    assert body["total"] == 4
    by_name = {item["name"]: item for item in body["data"]}
    assert set(by_name) == {"Public one", "Private one", "Encoding one", "Failed one"}
    assert by_name["Encoding one"]["progress"] == 55 and by_name["Encoding one"]["state"]["id"] == 2
    assert by_name["Failed one"]["failureReason"] == "Corrupt file."
    assert [item["name"] for item in body["data"]][0] == "Failed one"  # newest first
    status, body = await alice.get("/api/v1/users/me/videos?privacyOneOf=3")
    assert [item["name"] for item in body["data"]] == ["Private one"]
    status, body = await bob.get("/api/v1/users/me/videos")
    assert [item["name"] for item in body["data"]] == ["Bob's one"]
    status, body = await instance.client.get("/api/v1/users/me/videos")
    assert status == 401


async def test_junk_input_is_refused_not_500(instance: Instance) -> None:
    alice = await login(instance, "alice")
    video = await new_video(instance, "alice")
    junk = [None, 10**30, [1], {"a": 1}, "\u0000", "\ud800", "9999-12-31T23:59:59+14:00"]
    fields = ["name", "privacy", "category", "language", "tags", "nsfw", "originallyPublishedAt", "channelId"]
    failures = []
    for field in fields:
        for value in junk:
            status, body = await alice.put(f"/api/v1/videos/{video.id}", json={field: value})
            if status >= 500 or (status == 400 and body.get("field", "").split(".")[0] != field):
                failures.append((field, repr(value)[:30], status, body))
    for param in ("start", "categoryOneOf", "languageOneOf", "tagsOneOf", "search", "include"):
        for value in ("99999999999999999999", "%00", "%ED%A0%80", "x" * 300):
            status, body = await alice.get(f"/api/v1/videos?{param}={value}")
            if status >= 500:
                failures.append((param, value, status, body))
    assert not failures, failures
