"""Subscriptions to local channels: subscribe, list, exist, videos, unsubscribe."""

from __future__ import annotations

from instance.models import Privacy, VideoState
from tests.conftest import Instance
from tests.instance.test_videos import login, new_video


async def test_subscribe_list_exist_videos_unsubscribe(instance: Instance) -> None:
    viewer = await login(instance, "viewer")
    alice = await login(instance, "alice")
    await instance.create_user("bob")
    status, _ = await alice.post(
        "/api/v1/video-channels", json={"name": "alice_music", "displayName": "Music"}
    )
    assert status == 200
    host = instance.url.removeprefix("http://")
    await new_video(instance, "alice", "Alice public")
    await new_video(instance, "alice", "Alice internal", privacy=Privacy.INTERNAL)
    await new_video(instance, "alice", "Alice private", privacy=Privacy.PRIVATE)
    await new_video(instance, "alice", "Alice encoding", state=VideoState.PROBED)
    await new_video(instance, "alice", "Alice music", channel="alice_music")
    await new_video(instance, "bob", "Bob public")

    status, body = await viewer.post("/api/v1/users/me/subscriptions", json={"uri": f"alice_channel@{host}"})
    assert status == 204, body
    status, body = await viewer.post("/api/v1/users/me/subscriptions", json={"uri": f"alice_channel@{host}"})
    assert status == 204  # idempotent
    status, body = await viewer.post("/api/v1/users/me/subscriptions", json={"uri": "bob_channel"})
    assert status == 204

    status, body = await viewer.get("/api/v1/users/me/subscriptions?sort=name")
    assert status == 200 and body["total"] == 2
    assert [c["name"] for c in body["data"]] == ["alice_channel", "bob_channel"]
    assert body["data"][0]["followersCount"] == 1
    status, body = await instance.client.get("/api/v1/video-channels/alice_channel")
    assert body["followersCount"] == 1
    status, body = await instance.client.get("/api/v1/accounts/viewer")
    assert body["followingCount"] == 2

    status, body = await viewer.get(
        f"/api/v1/users/me/subscriptions/exist?uris=alice_channel@{host}&uris=alice_music@{host}"
        "&uris=bob_channel@" + host + "&uris=ghost@elsewhere.example"
    )
    assert status == 200
    assert body == {
        f"alice_channel@{host}": True,
        f"alice_music@{host}": False,
        f"bob_channel@{host}": True,
        "ghost@elsewhere.example": False,
    }
    status, body = await viewer.get(f"/api/v1/users/me/subscriptions/alice_channel@{host}")
    assert status == 200 and body["name"] == "alice_channel"
    status, body = await viewer.get("/api/v1/users/me/subscriptions/alice_music")
    assert status == 404 and body["code"] == "subscription_not_found"

    status, body = await viewer.get("/api/v1/users/me/subscriptions/videos?sort=name")
    assert status == 200
    assert [v["name"] for v in body["data"]] == ["Alice internal", "Alice public", "Bob public"]
    assert body["total"] == 3

    status, _ = await viewer.delete(f"/api/v1/users/me/subscriptions/bob_channel@{host}")
    assert status == 204
    status, body = await viewer.delete("/api/v1/users/me/subscriptions/bob_channel")
    assert status == 404 and body["code"] == "subscription_not_found"
    status, body = await viewer.get("/api/v1/users/me/subscriptions/videos?sort=name")
    assert [v["name"] for v in body["data"]] == ["Alice internal", "Alice public"]
    status, body = await viewer.get("/api/v1/users/me/subscriptions")
    assert [c["name"] for c in body["data"]] == ["alice_channel"]


async def test_subscription_errors(instance: Instance) -> None:
    viewer = await login(instance, "viewer")
    await instance.create_user("alice")
    for payload, status_code, code in [
        ({"uri": "somechannel@10.0.0.1"}, 400, "remote_refused"),  # SSRF guard, nothing fetched
        ({"uri": "nobody_here"}, 404, "channel_not_found"),
        ({"uri": "alice"}, 404, "channel_not_found"),  # an account, not a channel
        ({"uri": "not a handle"}, 400, "invalid_handle"),
        ({"uri": ""}, 400, "invalid_field"),
        ({}, 400, "invalid_field"),
        ({"uri": "alice_channel", "extra": 1}, 400, "invalid_field"),
    ]:
        status, body = await viewer.post("/api/v1/users/me/subscriptions", json=payload)
        assert status == status_code and body["code"] == code, (payload, body)
    status, body = await viewer.get("/api/v1/users/me/subscriptions/exist")
    assert status == 400 and body["field"] == "uris"
    status, body = await viewer.get("/api/v1/users/me/subscriptions/exist?uris=bad%20handle")
    assert status == 400 and body["code"] == "invalid_handle"
    for method, path in [
        ("GET", "/api/v1/users/me/subscriptions"),
        ("POST", "/api/v1/users/me/subscriptions"),
        ("GET", "/api/v1/users/me/subscriptions/exist?uris=alice_channel"),
        ("GET", "/api/v1/users/me/subscriptions/videos"),
        ("DELETE", "/api/v1/users/me/subscriptions/alice_channel"),
    ]:
        status, _ = await instance.client.request(method, path, json={"uri": "alice_channel"})
        assert status == 401, (method, path)
