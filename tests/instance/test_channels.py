"""Channels over HTTP: create, read, list, edit, delete; names, handles, roles, last channel."""

from __future__ import annotations

from instance.models import Role
from tests.conftest import Instance
from tests.instance.test_videos import add_renditions, login, new_video

CHANNEL_KEYS = {
    "id": int,
    "name": str,
    "displayName": str,
    "url": str,
    "host": str,
    "followersCount": int,
    "followingCount": int,
    "createdAt": str,
    "updatedAt": str,
    "isLocal": bool,
    "ownerAccount": dict,
    "avatars": list,
    "banners": list,
}


async def test_create_read_update_delete(instance: Instance) -> None:
    alice = await login(instance, "alice")
    status, body = await alice.post(
        "/api/v1/video-channels",
        json={
            "name": "alice_cooking",
            "displayName": "Alice cooks",
            "description": "Recipes",
            "support": "Tips",
        },
    )
    assert status == 200, body
    channel_id = body["videoChannel"]["id"]
    host = instance.url.removeprefix("http://")

    status, body = await instance.client.get("/api/v1/video-channels/alice_cooking")
    assert status == 200, body
    missing = sorted(set(CHANNEL_KEYS) - set(body))
    assert not missing and all(isinstance(body[k], t) for k, t in CHANNEL_KEYS.items()), (missing, body)
    assert body["id"] == channel_id and body["displayName"] == "Alice cooks"
    assert body["description"] == "Recipes" and body["support"] == "Tips"
    assert body["url"] == f"{instance.url}/video-channels/alice_cooking" and body["host"] == host
    assert body["isLocal"] is True and body["ownerAccount"]["name"] == "alice"
    status, same = await instance.client.get(f"/api/v1/video-channels/alice_cooking@{host}")
    assert status == 200 and same["id"] == channel_id

    status, body = await alice.put(
        "/api/v1/video-channels/alice_cooking", json={"displayName": "Alice bakes", "description": None}
    )
    assert status == 204, body
    status, body = await instance.client.get("/api/v1/video-channels/alice_cooking")
    assert body["displayName"] == "Alice bakes" and body["description"] is None and body["support"] == "Tips"

    status, body = await instance.client.get("/api/v1/video-channels?sort=name")
    assert status == 200 and body["total"] == 2
    assert [c["name"] for c in body["data"]] == ["alice_channel", "alice_cooking"]
    status, body = await instance.client.get("/api/v1/video-channels?sort=-name&count=1")
    assert body["total"] == 2 and [c["name"] for c in body["data"]] == ["alice_cooking"]

    status, _ = await alice.delete("/api/v1/video-channels/alice_cooking")
    assert status == 204
    status, body = await instance.client.get("/api/v1/video-channels/alice_cooking")
    assert status == 404 and body["code"] == "channel_not_found"


async def test_last_channel_cannot_be_deleted(instance: Instance) -> None:
    alice = await login(instance, "alice")
    admin = await login(instance, "boss", Role.ADMIN)
    for client in (alice, admin):
        status, body = await client.delete("/api/v1/video-channels/alice_channel")
        assert status == 409 and body["code"] == "last_channel"
    status, _ = await instance.client.get("/api/v1/video-channels/alice_channel")
    assert status == 200


async def test_names_are_checked_and_unique(instance: Instance) -> None:
    alice = await login(instance, "alice")
    await instance.create_user("bob")
    for name, code in [
        ("bob", "name_taken"),  # an account's name
        ("BOB", "name_taken"),  # case-insensitively
        ("bob_channel", "name_taken"),  # another user's channel
        ("alice", "name_taken"),  # the caller's own account
    ]:
        status, body = await alice.post("/api/v1/video-channels", json={"name": name, "displayName": "Mine"})
        assert status == 409 and body["code"] == code, (name, body)
    for payload, field in [
        ({"name": "has space", "displayName": "x"}, "name"),
        ({"name": "", "displayName": "x"}, "name"),
        ({"name": "n" * 51, "displayName": "x"}, "name"),
        ({"name": "fine_name"}, "displayName"),
        ({"name": "fine_name", "displayName": "   "}, "displayName"),
        ({"name": "fine_name", "displayName": "x", "description": "d" * 1001}, "description"),
        ({"name": "fine_name", "displayName": "x", "colour": "red"}, "colour"),
        ({"name": 7, "displayName": "x"}, "name"),
    ]:
        status, body = await alice.post("/api/v1/video-channels", json=payload)
        assert status == 400 and body["field"] == field, (payload, body)
    status, body = await instance.client.post(
        "/api/v1/video-channels", json={"name": "anon", "displayName": "A"}
    )
    assert status == 401


async def test_roles_on_edit_and_delete(instance: Instance) -> None:
    alice = await login(instance, "alice")
    bob = await login(instance, "bob")
    mod = await login(instance, "mod", Role.MODERATOR)
    admin = await login(instance, "boss", Role.ADMIN)
    status, _ = await alice.post("/api/v1/video-channels", json={"name": "alice_two", "displayName": "Two"})
    assert status == 200
    for client in (bob, mod):
        status, body = await client.put(
            "/api/v1/video-channels/alice_two", json={"displayName": "Taken over"}
        )
        assert status == 403 and body["code"] == "not_owner", body
        status, body = await client.delete("/api/v1/video-channels/alice_two")
        assert status == 403 and body["code"] == "not_owner"
    status, _ = await instance.client.put("/api/v1/video-channels/alice_two", json={"displayName": "Anon"})
    assert status == 401
    status, _ = await admin.put("/api/v1/video-channels/alice_two", json={"displayName": "Admin was here"})
    assert status == 204
    status, body = await instance.client.get("/api/v1/video-channels/alice_two")
    assert body["displayName"] == "Admin was here"
    status, _ = await admin.delete("/api/v1/video-channels/alice_two")
    assert status == 204
    status, body = await alice.put("/api/v1/video-channels/alice_channel", json={"displayName": ""})
    assert status == 400 and body["field"] == "displayName"


async def test_handles(instance: Instance) -> None:
    await instance.create_user("alice")
    for handle, status_code, code in [
        ("nobody_here", 404, "channel_not_found"),
        ("alice_channel@other.example", 404, "channel_not_found"),
        ("alice", 404, "channel_not_found"),  # an account, not a channel
        ("bad%20name", 400, "invalid_handle"),
        ("a@b@c", 400, "invalid_handle"),
        ("alice_channel@", 400, "invalid_handle"),
        ("%00", 400, "invalid_handle"),
    ]:
        status, body = await instance.client.get(f"/api/v1/video-channels/{handle}")
        assert status == status_code and body["code"] == code, (handle, body)
        status, body = await instance.client.get(f"/api/v1/video-channels/{handle}/videos")
        assert status == status_code and body["code"] == code, (handle, body)


async def test_channel_videos_and_delete_with_videos(instance: Instance) -> None:
    alice = await login(instance, "alice")
    status, _ = await alice.post(
        "/api/v1/video-channels", json={"name": "alice_music", "displayName": "Music"}
    )
    assert status == 200
    song = await new_video(instance, "alice", "A song", channel="alice_music")
    other = await new_video(instance, "alice", "Elsewhere")
    await add_renditions(instance, song)
    await instance.shoal.storage.put_bytes(f"hls/{song.uuid}/abc-master.m3u8", b"#EXTM3U")
    await instance.shoal.storage.put_bytes(f"hls/{other.uuid}/abc-master.m3u8", b"#EXTM3U")

    status, body = await instance.client.get("/api/v1/video-channels/alice_music/videos")
    assert status == 200 and [v["name"] for v in body["data"]] == ["A song"] and body["total"] == 1
    status, body = await instance.client.get("/api/v1/video-channels/alice_music/videos?sort=-bogus")
    assert status == 400 and body["field"] == "sort"

    status, _ = await alice.delete("/api/v1/video-channels/alice_music")
    assert status == 204
    status, _ = await instance.client.get(f"/api/v1/videos/{song.id}")
    assert status == 404
    status, _ = await instance.client.get(f"/api/v1/videos/{other.id}")
    assert status == 200
    assert not await instance.shoal.storage.exists(f"hls/{song.uuid}/abc-master.m3u8")
    assert await instance.shoal.storage.exists(f"hls/{other.uuid}/abc-master.m3u8")


async def test_bulk_support_update(instance: Instance) -> None:
    alice = await login(instance, "alice")
    video = await new_video(instance, "alice", support="Old support")
    status, _ = await alice.put(
        "/api/v1/video-channels/alice_channel",
        json={"support": "New support", "bulkVideosSupportUpdate": True},
    )
    assert status == 204
    status, body = await instance.client.get(f"/api/v1/videos/{video.id}")
    assert body["support"] == "New support"
