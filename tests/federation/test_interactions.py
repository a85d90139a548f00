"""Interactions between real instances on loopback: views counted on the origin, videos withdrawn
when hidden and sent again when shown, comments of a fetched video crawled."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from federation.delivery import activity_of
from federation.fanout import on_publish
from instance.models import Comment, Privacy, Rendition, Video, WorkItem
from instance.services.views import flush_views
from tests.conftest import Instance, InstanceFactory
from tests.federation.conftest import follow_state, wait_for
from tests.instance.test_videos import add_renditions, new_video


async def following_pair(make_instance: InstanceFactory) -> tuple[Instance, Instance, Any, Any]:
    """A and B, B's bob subscribed to alice's channel on A (accepted); returns (a, b, alice, bob)."""
    a = await make_instance("a")
    b = await make_instance("b")
    alice = await a.user_client("alice")
    bob = await b.user_client("bob")
    status, body = await bob.post(
        "/api/v1/users/me/subscriptions", json={"uri": f"alice_channel@{a.settings.public_host}"}
    )
    assert status == 204, body

    async def accepted() -> bool:
        return (
            await follow_state(b.shoal, f"{b.url}/accounts/bob", f"{a.url}/video-channels/alice_channel")
            == "accepted"
        )

    await wait_for(accepted, what="the subscription accepted")
    return a, b, alice, bob


async def published(a: Instance, name: str, **fields: Any) -> Any:
    video = await new_video(a, "alice", name, **fields)
    await add_renditions(a, video)
    await on_publish(a.shoal, video.id)
    return video


async def present(instance: Instance, uuid: str) -> bool:
    return (await instance.client.get(f"/api/v1/videos/{uuid}"))[0] == 200


async def activities_sent(instance: Instance, kind: str) -> list[dict[str, Any]]:
    async with instance.shoal.db.read() as session:
        payloads = [
            row.payload for row in await session.scalars(select(WorkItem).where(WorkItem.kind == "deliver"))
        ]
    return [await activity_of(instance.shoal, p) for p in payloads if p.get("type") == kind]


async def test_view_of_remote_video_is_counted_on_origin(make_instance: InstanceFactory) -> None:
    a, b, _, bob = await following_pair(make_instance)
    video = await published(a, "Watched from B")
    await wait_for(lambda: present(b, video.uuid), what="the video on B")

    # Two viewers on B (an anonymous one and bob); the anonymous one reports twice.
    for client in (b.client, b.client, bob):
        status, _ = await client.post(f"/api/v1/videos/{video.uuid}/views", json={"currentTime": 3})
        assert status == 204

    async def counted_on_a() -> bool:
        await flush_views(a.shoal)
        # B sends a View per viewer it counted; A counts an instance as one viewer per window.
        return (await a.client.get(f"/api/v1/videos/{video.uuid}"))[1]["views"] == 1

    await wait_for(counted_on_a, what="B's views counted on A")
    views = await activities_sent(b, "View")
    assert len(views) == 2 and {v["object"] for v in views} == {f"{a.url}/videos/watch/{video.uuid}"}
    assert all(v["actor"] == f"{b.url}/accounts/peertube" for v in views)
    # A view on the origin itself sends nothing.
    assert (await a.client.post(f"/api/v1/videos/{video.uuid}/views", json={}))[0] == 204
    assert await activities_sent(a, "View") == []


async def test_hidden_video_is_withdrawn_and_shown_again(make_instance: InstanceFactory) -> None:
    a, b, alice, _ = await following_pair(make_instance)
    video = await published(a, "Comes and goes")
    await wait_for(lambda: present(b, video.uuid), what="the video on B")
    path = f"/api/v1/videos/{video.uuid}"

    for hidden, shown in ((Privacy.INTERNAL, Privacy.PUBLIC), (Privacy.PRIVATE, Privacy.UNLISTED)):
        assert (await alice.put(path, json={"privacy": int(hidden)}))[0] == 204

        async def gone() -> bool:
            return (await b.client.get(path))[0] == 404

        await wait_for(gone, what=f"the video withdrawn from B when {hidden.name}")
        assert (await alice.put(path, json={"privacy": int(shown)}))[0] == 204
        await wait_for(lambda: present(b, video.uuid), what=f"the video back on B when {shown.name}")

    deletes = await activities_sent(a, "Delete")
    creates = await activities_sent(a, "Create")
    # Each withdrawal and return has its own activity id: B applies an id once.
    assert len({d["id"] for d in deletes}) == len(deletes) == 2
    assert [c["object"]["uuid"] for c in creates] == [video.uuid] * 3 and len({c["id"] for c in creates}) == 3
    # Back as unlisted: B keeps it, out of its public listing (PeerTube's form: nobody in ``to``).
    assert creates[-1]["to"] == [] and creates[-1]["cc"][0] == "https://www.w3.org/ns/activitystreams#Public"
    status, page = await b.client.get("/api/v1/videos")
    assert video.uuid not in [v["uuid"] for v in page["data"]]
    async with b.shoal.db.read() as session:
        assert list(await session.scalars(select(Comment))) == []


async def test_comments_of_a_fetched_video_are_crawled(
    make_instance: InstanceFactory, monkeypatch: Any
) -> None:
    """A video B learns of by URL arrives with the comments it already had, up to the bound."""
    from federation import backfill

    monkeypatch.setattr(backfill, "COMMENTS_ITEMS", 3)
    a = await make_instance("a")
    b = await make_instance("b")
    alice = await a.user_client("alice")
    bob = await b.user_client("bob")
    video = await new_video(a, "alice", "Already discussed")
    await add_renditions(a, video)
    threads = f"/api/v1/videos/{video.uuid}/comment-threads"
    first = (await alice.post(threads, json={"text": "First thread"}))[1]["comment"]
    assert (await alice.post(threads, json={"text": "Second thread"}))[0] == 200
    reply = await alice.post(f"/api/v1/videos/{video.uuid}/comments/{first['id']}", json={"text": "A reply"})
    assert reply[0] == 200, reply
    assert (await alice.post(threads, json={"text": "Beyond the bound"}))[0] == 200

    url = f"{a.url}/videos/watch/{video.uuid}"
    status, page = await bob.get("/api/v1/search/videos", params={"search": url})
    assert status == 200 and page["total"] == 1, page

    async def crawled() -> list[str] | None:
        status, page = await b.client.get(threads)
        texts = sorted(t["text"] for t in page["data"]) if status == 200 else []
        return texts if len(texts) == 2 else None

    assert await wait_for(crawled, what="the comments crawled on B") == ["First thread", "Second thread"]
    status, page = await b.client.get(threads)
    thread = next(t for t in page["data"] if t["text"] == "First thread")
    status, tree = await b.client.get(f"{threads}/{thread['id']}")
    assert [c["comment"]["text"] for c in tree["children"]] == ["A reply"]
    assert thread["account"]["host"] == a.settings.public_host
    async with b.shoal.db.read() as session:
        assert sorted(c.text for c in await session.scalars(select(Comment))) == [
            "A reply", "First thread", "Second thread"
        ]  # fmt: skip


async def test_torrents_made_after_publication_reach_followers(make_instance: InstanceFactory) -> None:
    """The Create goes out before P2P made the torrents; making them sends an Update with the
    torrent and magnet links, and the swarm ids as PeerTube's Infohash tags."""
    from p2p.service import make_torrents
    from p2p.swarm import swarm_ids

    a, b, _, _ = await following_pair(make_instance)
    video = await new_video(a, "alice", "Seeded later")
    await add_renditions(a, video)
    async with a.shoal.db.write() as session:
        renditions = list(await session.scalars(select(Rendition).where(Rendition.video_id == video.id)))
        for rendition in renditions:
            rendition.torrent_path = rendition.info_hash = None
            await a.shoal.storage.put_bytes(rendition.file_path, bytes([rendition.height % 251]) * 300_000)
        await session.flush()
        session.expunge_all()
    await on_publish(a.shoal, video.id)
    await wait_for(lambda: present(b, video.uuid), what="the video on B")

    async def files_on_b() -> list[dict[str, Any]]:
        return (await b.client.get(f"/api/v1/videos/{video.uuid}"))[1]["streamingPlaylists"][0]["files"]

    assert [f["magnetUri"] for f in await files_on_b()] == [None, None]

    assert await make_torrents(a.shoal, video.id) == 2
    async with a.shoal.db.read() as session:
        made = {
            r.height: r.info_hash
            for r in await session.scalars(select(Rendition).where(Rendition.video_id == video.id))
        }
        row = await session.get(Video, video.id)
        session.expunge_all()
    assert all(made.values())

    async def magnets_on_b() -> bool:
        files = await files_on_b()
        return all(
            f["magnetUri"] and f"urn:btih:{made[f['resolution']['id']]}" in f["magnetUri"] for f in files
        )

    await wait_for(magnets_on_b, what="the torrent links on B")
    files = await files_on_b()
    assert all(f["torrentUrl"].startswith(a.url + "/") for f in files)
    updates = [u for u in await activities_sent(a, "Update") if u["object"]["uuid"] == video.uuid]
    assert len(updates) == 1
    hls = next(u for u in updates[0]["object"]["url"] if u["mediaType"] == "application/x-mpegURL")
    infohashes = [t["name"] for t in hls["tag"] if t["type"] == "Infohash"]
    assert infohashes == swarm_ids(a.shoal, row, sorted(renditions, key=lambda r: -r.height))
    assert len(set(infohashes)) == 2 and not set(infohashes) & set(made.values())
    # Made again with nothing changed: no second Update.
    assert await make_torrents(a.shoal, video.id) == 2
    assert len([u for u in await activities_sent(a, "Update") if u["object"]["uuid"] == video.uuid]) == 1
