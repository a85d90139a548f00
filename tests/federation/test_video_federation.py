"""Videos, comments and ratings between real instances on loopback ports.

B follows A's channel → A publishes a real clip → B lists it, played from A's HLS → B
comments → the comment is on A → A edits → B updates → A deletes → gone on B. Unlisted
videos arrive cc-only (stored, not listed); private ones never leave A.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update

from federation.backfill import refresh_remote_videos
from federation.fanout import on_publish, send_view
from instance.models import Actor, Comment, DeliveryBody, Privacy, Role, Video, VideoRate, WorkItem, utcnow
from instance.services.views import flush_views
from tests import media
from tests.conftest import InstanceFactory
from tests.federation.conftest import follow_state, get_json, wait_for
from tests.instance.test_videos import add_renditions, new_video
from tests.support import upload, wait_done

AP = {"Accept": "application/activity+json"}


async def test_channel_videos_comments_edits_and_deletion(
    make_instance: InstanceFactory, tmp_path: Any
) -> None:
    a = await make_instance("a")
    b = await make_instance("b")
    alice = await a.user_client("alice")
    bob = await b.user_client("bob")
    a_host = a.settings.public_host
    follower, channel = f"{b.url}/accounts/bob", f"{a.url}/video-channels/alice_channel"

    status, body = await bob.post("/api/v1/users/me/subscriptions", json={"uri": f"alice_channel@{a_host}"})
    assert status == 204, body

    async def accepted() -> bool:
        return await follow_state(b.shoal, follower, channel) == "accepted"

    await wait_for(accepted, what="the subscription accepted")

    # A publishes a real clip; B receives it and plays it from A.
    created = await upload(alice, media.landscape_720p30(tmp_path), "Federated clip")
    details_a = await wait_done(alice, created["id"])
    assert details_a["state"]["id"] == 1, details_a
    uuid = created["uuid"]

    async def listed_on_b() -> dict[str, Any] | None:
        status, page = await b.client.get("/api/v1/videos", params={"isLocal": "false"})
        return next((v for v in page["data"] if v["uuid"] == uuid), None) if status == 200 else None

    item = await wait_for(listed_on_b, what="the video listed on B")
    assert item["isLocal"] is False and item["url"] == f"{a.url}/videos/watch/{uuid}"
    assert item["channel"]["host"] == a_host and item["name"] == "Federated clip"
    status, details_b = await bob.get(f"/api/v1/videos/{uuid}")
    assert status == 200, details_b
    master = details_b["streamingPlaylists"][0]["playlistUrl"]
    assert master == details_a["streamingPlaylists"][0]["playlistUrl"] and master.startswith(a.url + "/")
    assert [f["resolution"]["id"] for f in details_b["streamingPlaylists"][0]["files"]] == [
        f["resolution"]["id"] for f in details_a["streamingPlaylists"][0]["files"]
    ]
    async with b.client.session.get(master) as response:  # B's viewers play from A
        assert response.status == 200 and (await response.text()).startswith("#EXTM3U")
    # B serves A's thumbnail from its own copy, fetched on first request.
    assert details_b["thumbnailPath"].startswith("/lazy-static/thumbnails/remote-")
    async with b.client.session.get(b.url + details_b["thumbnailPath"]) as response:
        assert response.status == 200 and (await response.read())[:3] == b"\xff\xd8\xff"

    # The AP document A serves is the one B parsed; browsers are sent to the watch page.
    status, doc = await get_json(a, f"/videos/watch/{uuid}", headers=AP)
    assert status == 200 and doc["type"] == "Video" and doc["uuid"] == uuid
    async with a.client.session.get(f"{a.url}/videos/watch/{uuid}", allow_redirects=False) as response:
        assert response.status == 302 and response.headers["Location"].startswith("/w/")

    # B comments on the remote video; the comment reaches A.
    status, body = await bob.post(f"/api/v1/videos/{uuid}/comment-threads", json={"text": "Nice clip from B"})
    assert status == 200, body

    async def comment_on_a() -> dict[str, Any] | None:
        status, page = await a.client.get(f"/api/v1/videos/{uuid}/comment-threads")
        return page["data"][0] if status == 200 and page["total"] else None

    remote_comment = await wait_for(comment_on_a, what="B's comment on A")
    assert (
        remote_comment["text"] == "Nice clip from B"
        and remote_comment["account"]["host"] == b.settings.public_host
    )
    # A's reply goes back to B, threaded under B's comment.
    status, body = await alice.post(
        f"/api/v1/videos/{uuid}/comments/{remote_comment['id']}", json={"text": "Thanks from A"}
    )
    assert status == 200, body

    async def reply_on_b() -> bool:
        status, page = await b.client.get(f"/api/v1/videos/{uuid}/comment-threads")
        if status != 200 or not page["data"]:
            return False
        status, tree = await b.client.get(f"/api/v1/videos/{uuid}/comment-threads/{page['data'][0]['id']}")
        return [c["comment"]["text"] for c in tree["children"]] == ["Thanks from A"]

    await wait_for(reply_on_b, what="A's reply on B")

    # B likes it: counted on A.
    assert (await bob.put(f"/api/v1/videos/{uuid}/rate", json={"rating": "like"}))[0] == 204

    async def liked_on_a() -> bool:
        return (await a.client.get(f"/api/v1/videos/{uuid}"))[1]["likes"] == 1

    await wait_for(liked_on_a, what="B's like counted on A")
    for collection, total in (("likes", 1), ("dislikes", 0), ("comments", 2), ("announces", 2)):
        status, doc = await get_json(a, f"/videos/watch/{uuid}/{collection}", headers=AP)
        assert status == 200 and doc["type"] == "OrderedCollection" and doc["totalItems"] == total, doc
    status, doc = await get_json(a, f"/videos/watch/{uuid}/likes?page=1", headers=AP)
    assert doc["orderedItems"] == [f"{b.url}/accounts/bob/likes/{details_b['id']}"]
    status, doc = await get_json(a, f"/videos/watch/{uuid}/announces?page=1", headers=AP)
    for share in doc["orderedItems"]:  # the channel's and the Application actor's Announce
        status, announce = await get_json(a, share.removeprefix(a.url), headers=AP)
        assert status == 200 and announce["type"] == "Announce" and announce["object"] == item["url"]

    # B deletes its comment: a Tombstone on A, the thread keeps A's reply.
    status, page = await b.client.get(f"/api/v1/videos/{uuid}/comment-threads")
    assert (await bob.delete(f"/api/v1/videos/{uuid}/comments/{page['data'][0]['id']}"))[0] == 204

    async def tombstoned_on_a() -> bool:
        status, page = await a.client.get(f"/api/v1/videos/{uuid}/comment-threads")
        return page["data"][0]["isDeleted"] and page["totalNotDeletedComments"] == 1

    await wait_for(tombstoned_on_a, what="the Delete of B's comment on A")
    status, tomb = await get_json(b, f"/videos/watch/{uuid}/comments/{page['data'][0]['id']}", headers=AP)
    assert status == 200 and tomb["type"] == "Tombstone" and tomb["formerType"] == "Note", tomb
    status, note = await get_json(a, f"/videos/watch/{uuid}/comments/{remote_comment['id']}", headers=AP)
    assert status == 404  # a remote comment is served by its origin

    # A edits the title; B updates.
    status, _ = await alice.put(f"/api/v1/videos/{uuid}", json={"name": "Renamed on A"})
    assert status == 204

    async def renamed_on_b() -> bool:
        return (await b.client.get(f"/api/v1/videos/{uuid}"))[1].get("name") == "Renamed on A"

    await wait_for(renamed_on_b, what="the Update on B")

    # Unlisted arrives cc-only (reachable, not listed); private never leaves A.
    unlisted = await new_video(a, "alice", "Unlisted one", privacy=Privacy.UNLISTED)
    private = await new_video(a, "alice", "Private one", privacy=Privacy.PRIVATE)
    for video in (unlisted, private):
        await add_renditions(a, video)
        await on_publish(a.shoal, video.id)

    async def unlisted_on_b() -> bool:
        return (await b.client.get(f"/api/v1/videos/{unlisted.uuid}"))[0] == 200

    await wait_for(unlisted_on_b, what="the unlisted video on B")
    status, page = await b.client.get("/api/v1/videos")
    assert [v["uuid"] for v in page["data"]] == [uuid]
    async with a.shoal.db.read() as session:
        payloads = [json.dumps(row.payload) for row in await session.scalars(select(WorkItem))]
        # What the deliveries send is stored once per fan-out.
        sent = [json.dumps(json.loads(b)) for b in await session.scalars(select(DeliveryBody.body))]
    payloads += sent
    unlisted_creates = [p for p in sent if unlisted.uuid in p and '"Create"' in p]
    assert unlisted_creates and all(  # PeerTube's unlisted form: nobody in ``to``, Public in cc
        '"to": [], "cc": ["https://www.w3.org/ns/activitystreams#Public"' in p for p in unlisted_creates
    )
    assert not any(private.uuid in p for p in payloads)
    assert (await b.client.get(f"/api/v1/videos/{private.uuid}"))[0] == 404
    assert (await get_json(a, f"/videos/watch/{private.uuid}", headers=AP))[0] == 404

    # A deletes the video; it is gone on B with its comments and ratings.
    status, _ = await alice.delete(f"/api/v1/videos/{uuid}")
    assert status == 204

    async def gone_on_b() -> bool:
        return (await b.client.get(f"/api/v1/videos/{uuid}"))[0] == 404

    await wait_for(gone_on_b, what="the Delete on B")
    async with b.shoal.db.read() as session:
        assert list(await session.scalars(select(VideoRate))) == []


async def test_backfill_and_search_by_url(make_instance: InstanceFactory) -> None:
    """Videos published before the follow arrive through the outbox crawl; search resolves a URL."""
    a = await make_instance("a")
    b = await make_instance("b")
    await a.create_user("alice")
    bob = await b.user_client("bob")
    old = await new_video(a, "alice", "Published before the follow")
    await add_renditions(a, old)
    status, outbox = await get_json(a, "/video-channels/alice_channel/outbox?page=1", headers=AP)
    assert status == 200 and outbox["orderedItems"][0]["object"]["uuid"] == old.uuid

    status, _ = await bob.post(
        "/api/v1/users/me/subscriptions", json={"uri": f"alice_channel@{a.settings.public_host}"}
    )
    assert status == 204

    async def backfilled() -> bool:
        return (await b.client.get(f"/api/v1/videos/{old.uuid}"))[0] == 200

    await wait_for(backfilled, what="the outbox backfill on B")

    # The periodic refresh re-fetches stale remote videos; a 404 at the origin removes them.
    async with a.shoal.db.write() as session:
        (await session.get(Video, old.id)).name = "Renamed quietly"
    async with b.shoal.db.write() as session:
        await session.execute(
            update(Video).where(Video.uuid == old.uuid).values(state_changed_at=utcnow() - timedelta(days=3))
        )
    assert await refresh_remote_videos(b.shoal) == 1
    assert (await b.client.get(f"/api/v1/videos/{old.uuid}"))[1]["name"] == "Renamed quietly"
    assert await refresh_remote_videos(b.shoal) == 0  # fresh now
    async with a.shoal.db.write() as session:
        await session.execute(delete(Video).where(Video.id == old.id))
    async with b.shoal.db.write() as session:
        await session.execute(
            update(Video).where(Video.uuid == old.uuid).values(state_changed_at=utcnow() - timedelta(days=3))
        )
    assert await refresh_remote_videos(b.shoal) == 1
    assert (await b.client.get(f"/api/v1/videos/{old.uuid}"))[0] == 404

    # Privacy edits: private → public sends it (Create), public → private withdraws it (Delete).
    alice = a.client.as_user(await a.client.login("alice", "password123"))
    hidden = await new_video(a, "alice", "Private at first", privacy=Privacy.PRIVATE)
    await add_renditions(a, hidden)
    assert (await alice.put(f"/api/v1/videos/{hidden.uuid}", json={"privacy": 1}))[0] == 204

    async def public_on_b() -> bool:
        return (await b.client.get(f"/api/v1/videos/{hidden.uuid}"))[0] == 200

    await wait_for(public_on_b, what="the newly public video on B")
    assert (await alice.put(f"/api/v1/videos/{hidden.uuid}", json={"privacy": 3}))[0] == 204

    async def withdrawn_on_b() -> bool:
        return (await b.client.get(f"/api/v1/videos/{hidden.uuid}"))[0] == 404

    await wait_for(withdrawn_on_b, what="the now private video gone from B")

    # Search by URL: anonymous callers only find known videos; users make B fetch it.
    other = await new_video(a, "alice", "Found by URL")
    await add_renditions(a, other)
    assert (await alice.put(f"/api/v1/videos/{other.uuid}/rate", json={"rating": "like"}))[0] == 204
    url = f"{a.url}/videos/watch/{other.uuid}"
    status, page = await b.client.get("/api/v1/search/videos", params={"search": url})
    assert status == 200 and page["total"] == 0
    status, page = await bob.get("/api/v1/search/videos", params={"search": url})
    assert status == 200 and page["total"] == 1 and page["data"][0]["uuid"] == other.uuid, page
    assert page["data"][0]["likes"] == 1  # the origin's count, from its likes collection

    # A view of the remote video on B is counted on A.
    await send_view(b.shoal, page["data"][0]["id"])

    async def viewed_on_a() -> bool:
        await flush_views(a.shoal)
        return (await a.client.get(f"/api/v1/videos/{other.uuid}"))[1]["views"] == 1

    await wait_for(viewed_on_a, what="B's view counted on A")
    status, page = await b.client.get("/api/v1/search/videos", params={"search": url})
    assert page["total"] == 1


async def test_three_instances_instance_follow_and_forwarded_comments(make_instance: InstanceFactory) -> None:
    """C follows A's instance (Application actor), B follows A's channel: both get A's public
    video; B's comment on it reaches A, which forwards it to C (PeerTube's forwarding)."""
    a = await make_instance("a")
    b = await make_instance("b")
    c = await make_instance("c")
    await a.create_user("alice")
    bob = await b.user_client("bob")
    admin = await c.user_client("boss", role=Role.ADMIN)
    a_host = a.settings.public_host
    status, body = await bob.post("/api/v1/users/me/subscriptions", json={"uri": f"alice_channel@{a_host}"})
    assert status == 204, body
    status, body = await admin.post("/api/v1/server/following", json={"hosts": [a_host]})
    assert status in (200, 204), body

    async def both_accepted() -> bool:
        return (
            await follow_state(b.shoal, f"{b.url}/accounts/bob", f"{a.url}/video-channels/alice_channel")
            == "accepted"
            and await follow_state(c.shoal, f"{c.url}/accounts/peertube", f"{a.url}/accounts/peertube")
            == "accepted"
        )

    await wait_for(both_accepted, what="both follows accepted")
    video = await new_video(a, "alice", "Seen by everyone")
    await add_renditions(a, video)
    await on_publish(a.shoal, video.id)

    for instance in (b, c):

        async def arrived(instance: Any = instance) -> bool:
            return (await instance.client.get(f"/api/v1/videos/{video.uuid}"))[0] == 200

        await wait_for(arrived, what=f"the video on {instance.url}")

    status, body = await bob.post(f"/api/v1/videos/{video.uuid}/comment-threads", json={"text": "From B"})
    assert status == 200, body

    async def comment_on(instance: Any) -> bool:
        status, page = await instance.client.get(f"/api/v1/videos/{video.uuid}/comment-threads")
        return status == 200 and [x["text"] for x in page["data"]] == ["From B"]

    await wait_for(lambda: comment_on(a), what="B's comment on A")
    await wait_for(lambda: comment_on(c), what="B's comment forwarded to C")
    status, page = await c.client.get(f"/api/v1/videos/{video.uuid}/comment-threads")
    assert page["data"][0]["account"]["host"] == b.settings.public_host

    # A reply whose parent B never received: B fetches the parent from A first.
    async with a.shoal.db.write() as session:
        account_id = await session.scalar(select(Actor.id).where(Actor.ap_id == f"{a.url}/accounts/alice"))
        parent = Comment(video_id=video.id, account_id=account_id, text="Quiet parent")
        session.add(parent)
        await session.flush()
        parent_id = parent.id
    alice = await a.user_client("alice2")
    status, body = await alice.post(
        f"/api/v1/videos/{video.uuid}/comments/{parent_id}", json={"text": "Loud reply"}
    )
    assert status == 200, body

    async def fetched_parent_on_b() -> bool:
        status, page = await b.client.get(f"/api/v1/videos/{video.uuid}/comment-threads")
        thread = next((x for x in page["data"] if x["text"] == "Quiet parent"), None)
        if thread is None:
            return False
        status, tree = await b.client.get(f"/api/v1/videos/{video.uuid}/comment-threads/{thread['id']}")
        return [x["comment"]["text"] for x in tree["children"]] == ["Loud reply"]

    await wait_for(fetched_parent_on_b, what="the parent fetched on B")
