"""Follows between real instances: channel subscriptions, Undo, instance follows, remote channel search."""

from __future__ import annotations

from instance.models import Role
from tests.conftest import InstanceFactory
from tests.federation.conftest import follow_state, get_json, wait_for


async def test_subscribe_to_a_remote_channel_then_undo(make_instance: InstanceFactory) -> None:
    a = await make_instance("a")
    b = await make_instance("b")
    await a.create_user("alice")
    viewer = await b.user_client("viewer")
    a_host = a.settings.public_host
    follower, channel = f"{b.url}/accounts/viewer", f"{a.url}/video-channels/alice_channel"

    status, body = await viewer.post(
        "/api/v1/users/me/subscriptions", json={"uri": f"alice_channel@{a_host}"}
    )
    assert status == 204, body
    assert await follow_state(b.shoal, follower, channel) in ("pending", "accepted")

    async def accepted_on_both() -> bool:
        return (
            await follow_state(a.shoal, follower, channel) == "accepted"
            and await follow_state(b.shoal, follower, channel) == "accepted"
        )

    await wait_for(accepted_on_both, what="Follow → Accept between the instances")
    status, body = await viewer.get(f"/api/v1/users/me/subscriptions/alice_channel@{a_host}")
    assert status == 200 and body["name"] == "alice_channel" and body["host"] == a_host, body
    assert body["ownerAccount"]["name"] == "alice"
    status, body = await viewer.get("/api/v1/users/me/subscriptions")
    assert [c["name"] for c in body["data"]] == ["alice_channel"]
    status, followers = await get_json(a, "/video-channels/alice_channel/followers?page=1",
                                       headers={"Accept": "application/activity+json"})  # fmt: skip
    assert followers["totalItems"] == 1 and followers["orderedItems"] == [follower]
    # Subscribing again is idempotent; a URL works as well as a handle.
    status, _ = await viewer.post("/api/v1/users/me/subscriptions", json={"uri": channel})
    assert status == 204

    status, _ = await viewer.delete(f"/api/v1/users/me/subscriptions/alice_channel@{a_host}")
    assert status == 204
    assert await follow_state(b.shoal, follower, channel) is None

    async def gone_on_a() -> bool:
        return await follow_state(a.shoal, follower, channel) is None

    await wait_for(gone_on_a, what="Undo Follow on the channel's instance")
    status, body = await viewer.delete(f"/api/v1/users/me/subscriptions/alice_channel@{a_host}")
    assert status == 404 and body["code"] == "subscription_not_found"
    status, body = await viewer.post("/api/v1/users/me/subscriptions", json={"uri": f"nobody@{a_host}"})
    assert status == 404 and body["code"] == "channel_not_found", body
    status, body = await viewer.post("/api/v1/users/me/subscriptions", json={"uri": f"alice@{a_host}"})
    assert status == 400 and body["code"] == "not_a_channel", body


async def test_instance_follow(make_instance: InstanceFactory) -> None:
    a = await make_instance("a")
    b = await make_instance("b")
    admin = await b.user_client("boss", role=Role.ADMIN)
    user = await b.user_client("someone")
    a_host = a.settings.public_host

    status, body = await user.post("/api/v1/server/following", json={"hosts": [a_host]})
    assert status == 403, body
    status, body = await admin.post("/api/v1/server/following", json={"hosts": [b.settings.public_host]})
    assert status == 400 and body["code"] == "cannot_follow_self", body
    status, body = await admin.post("/api/v1/server/following", json={"hosts": [a_host]})
    assert status == 204, body

    async def accepted() -> bool:
        return (
            await follow_state(b.shoal, f"{b.url}/accounts/peertube", f"{a.url}/accounts/peertube")
            == "accepted"
        )

    await wait_for(accepted, what="the instance follow to be accepted")
    status, body = await b.client.get("/api/v1/server/following")
    assert body["total"] == 1
    assert body["data"][0]["following"]["host"] == a_host and body["data"][0]["state"] == "accepted"
    status, body = await a.client.get("/api/v1/server/followers")
    assert body["total"] == 1 and body["data"][0]["follower"]["url"] == f"{b.url}/accounts/peertube"

    status, _ = await admin.delete(f"/api/v1/server/following/{a_host}")
    assert status == 204

    async def undone() -> bool:
        _, body = await a.client.get("/api/v1/server/followers")
        return body["total"] == 0

    await wait_for(undone, what="the instance follow to be undone on the followed side")
    status, body = await admin.delete(f"/api/v1/server/following/{a_host}")
    assert status == 404 and body["code"] == "follow_not_found"


async def test_search_resolves_a_remote_channel(make_instance: InstanceFactory) -> None:
    a = await make_instance("a")
    b = await make_instance("b")
    await a.create_user("alice")
    a_host = a.settings.public_host
    status, body = await b.client.get(f"/api/v1/search/video-channels?search=alice_channel@{a_host}")
    assert status == 200 and body["total"] == 1, body
    channel = body["data"][0]
    assert channel["name"] == "alice_channel" and channel["host"] == a_host
    assert channel["ownerAccount"]["name"] == "alice"
    status, body = await b.client.get(
        f"/api/v1/search/video-channels?search={a.url}/video-channels/alice_channel"
    )
    assert status == 200 and body["total"] == 1
    status, body = await b.client.get(f"/api/v1/search/video-channels?search=nobody@{a_host}")
    assert status == 200 and body["total"] == 0
    # Once known, the remote channel is found by words too.
    status, body = await b.client.get("/api/v1/search/video-channels?search=ALICE_ch")
    assert status == 200 and [c["host"] for c in body["data"]] == [a_host], body
    status, body = await b.client.get("/api/v1/search/video-channels?search=a%25_")
    assert status == 200 and body["total"] == 0
