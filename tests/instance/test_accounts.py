"""Accounts over HTTP: profiles by name or handle, their channels and their videos."""

from __future__ import annotations

from instance.models import Privacy
from tests.conftest import Instance
from tests.instance.test_videos import login, new_video

ACCOUNT_KEYS = {
    "id": int,
    "name": str,
    "displayName": str,
    "url": str,
    "host": str,
    "followersCount": int,
    "followingCount": int,
    "createdAt": str,
    "avatars": list,
    "userId": int,
}


async def test_get_account(instance: Instance) -> None:
    user = await instance.create_user("alice", display_name="Alice A.")
    host = instance.url.removeprefix("http://")
    for handle in ("alice", f"alice@{host}", f"alice@{host.upper()}"):
        status, body = await instance.client.get(f"/api/v1/accounts/{handle}")
        assert status == 200, (handle, body)
        missing = sorted(set(ACCOUNT_KEYS) - set(body))
        assert not missing and all(isinstance(body[k], t) for k, t in ACCOUNT_KEYS.items()), (missing, body)
        assert body["name"] == "alice" and body["displayName"] == "Alice A." and body["host"] == host
        assert body["url"] == f"{instance.url}/accounts/alice" and body["userId"] == user.id
    for handle, status_code, code in [
        ("nobody", 404, "account_not_found"),
        ("alice_channel", 404, "account_not_found"),  # a channel, not an account
        ("alice@elsewhere.example", 404, "account_not_found"),
        ("al ice", 400, "invalid_handle"),
    ]:
        status, body = await instance.client.get(f"/api/v1/accounts/{handle}")
        assert status == status_code and body["code"] == code, (handle, body)


async def test_account_channels_and_list(instance: Instance) -> None:
    alice = await login(instance, "alice")
    await instance.create_user("bob")
    status, _ = await alice.post("/api/v1/video-channels", json={"name": "alice_two", "displayName": "Two"})
    assert status == 200
    status, body = await instance.client.get("/api/v1/accounts/alice/video-channels?sort=name")
    assert status == 200 and body["total"] == 2
    assert [c["name"] for c in body["data"]] == ["alice_channel", "alice_two"]
    assert all(c["ownerAccount"]["name"] == "alice" for c in body["data"])
    status, body = await instance.client.get("/api/v1/accounts/nobody/video-channels")
    assert status == 404 and body["code"] == "account_not_found"
    status, body = await instance.client.get("/api/v1/accounts?sort=name")
    assert status == 200 and [a["name"] for a in body["data"]] == ["alice", "bob"] and body["total"] == 2


async def test_account_videos(instance: Instance) -> None:
    alice = await login(instance, "alice")
    await instance.create_user("bob")
    status, _ = await alice.post("/api/v1/video-channels", json={"name": "alice_two", "displayName": "Two"})
    await new_video(instance, "alice", "In the first channel")
    await new_video(instance, "alice", "In the second channel", channel="alice_two")
    await new_video(instance, "alice", "Private", privacy=Privacy.PRIVATE)
    await new_video(instance, "bob", "Bob's")
    status, body = await instance.client.get("/api/v1/accounts/alice/videos?sort=name")
    assert status == 200 and body["total"] == 2
    assert [v["name"] for v in body["data"]] == ["In the first channel", "In the second channel"]
    status, body = await alice.get("/api/v1/accounts/alice/videos?privacyOneOf=3")
    assert status == 200 and [v["name"] for v in body["data"]] == ["Private"]
    status, body = await instance.client.get("/api/v1/accounts/alice/videos?privacyOneOf=3")
    assert status == 403
    status, body = await instance.client.get("/api/v1/accounts/nobody/videos")
    assert status == 404 and body["code"] == "account_not_found"
