# ruff: noqa: E501 - PeerTube documents are written out as they arrive, one link per line
"""Video and Note documents: PeerTube's shape, JSON-LD expansion, round trips, fixtures ingested.

JSON-LD expansion runs pyld in a thread with a document loader that serves the known
contexts locally (no network).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from pyld import jsonld
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from federation.activities import on_announce, on_create_note, on_create_video, on_delete, on_like
from federation.actors import actor_to_ap
from federation.context import PUBLIC, offline_document_loader
from federation.fanout import create_activity
from federation.note_store import parse_note
from federation.notes import note_context, note_to_ap
from federation.video_parse import InvalidObject, parse_video
from federation.video_store import store_remote_video
from federation.videos import to_ap
from instance.models import (
    Actor,
    ActorKind,
    Comment,
    Privacy,
    Rendition,
    User,
    Video,
    VideoRate,
    VideoShare,
    utcnow,
)
from instance.services.comments import add_comment
from instance.services.comments import delete_comment as soft_delete
from instance.web.media import media_url
from tests.conftest import Instance
from tests.instance.test_videos import add_renditions, new_video

FIXTURES = Path(__file__).resolve().parent / "data" / "peertube"
PT = "https://joinpeertube.org/ns#"
AS = "https://www.w3.org/ns/activitystreams#"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


async def expand(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """pyld expansion off the event loop, contexts served locally."""
    options = {"documentLoader": offline_document_loader()}
    return await asyncio.to_thread(jsonld.expand, copy.deepcopy(doc), options)


async def remote_actor(
    instance: Instance, url: str, kind: ActorKind, name: str, owner: Actor | None = None
) -> Actor:
    """A stored remote actor, fresh (so nothing is fetched)."""
    host = url.split("/")[2]
    async with instance.shoal.db.write() as session:
        actor = Actor(
            kind=kind,
            preferred_username=name,
            host=host,
            ap_id=url,
            inbox_url=url + "/inbox",
            shared_inbox_url=f"http://{host}/inbox",
            outbox_url=url + "/outbox",
            followers_url=url + "/followers",
            owner_id=owner.id if owner else None,
            fetched_at=utcnow(),
        )
        session.add(actor)
        await session.flush()
        session.expunge(actor)
    return actor


async def local_video(
    instance: Instance, owner: str = "alice", **fields: Any
) -> tuple[Video, list[Rendition]]:
    await instance.create_user(owner)
    created = await new_video(instance, owner, "Federated video", tags=["demo", "shoal"], language="en",
                              category=15, licence=1, description="A **demo**", duration=95.4, **fields)  # fmt: skip
    await add_renditions(instance, created)
    async with instance.shoal.db.write() as session:
        row = await session.get(Video, created.id)
        row.storyboard = {"key": f"storyboards/{row.uuid}/x.vtt", "sprites": [f"storyboards/{row.uuid}/x.jpg"],
                          "tileWidth": 192, "tileHeight": 108, "columns": 10, "rows": 5, "tileCount": 50,
                          "tileDuration": 2}  # fmt: skip
    async with instance.shoal.db.read() as session:
        video = await session.scalar(
            select(Video)
            .options(joinedload(Video.channel).joinedload(Actor.owner))
            .where(Video.id == created.id)
        )
        renditions = list(
            await session.scalars(
                select(Rendition).where(Rendition.video_id == video.id).order_by(Rendition.height.desc())
            )
        )
        session.expunge_all()
    return video, renditions


async def test_video_document_is_peertubes_shape(instance: Instance) -> None:
    shoal = instance.shoal
    video, renditions = await local_video(instance)
    doc = to_ap(shoal, video, renditions)
    vid = f"{instance.url}/videos/watch/{video.uuid}"
    assert doc["type"] == "Video" and doc["id"] == vid and doc["uuid"] == video.uuid
    assert (
        doc["duration"] == "PT95S" and doc["mediaType"] == "text/markdown" and doc["content"] == "A **demo**"
    )
    assert doc["language"] == {"identifier": "en", "name": "English"}
    assert doc["category"] == {"identifier": "15", "name": "Science & Technology"}
    assert doc["licence"]["identifier"] == "1"
    assert doc["tag"] == [{"type": "Hashtag", "name": "demo"}, {"type": "Hashtag", "name": "shoal"}]
    assert (
        doc["state"] == 1 and doc["views"] == 0 and doc["commentsEnabled"] is True and doc["canReply"] is None
    )
    assert doc["attributedTo"] == [
        {"type": "Person", "id": f"{instance.url}/accounts/alice"},
        {"type": "Group", "id": f"{instance.url}/video-channels/alice_channel"},
    ]
    assert doc["to"] == [PUBLIC] and f"{instance.url}/accounts/alice/followers" in doc["cc"]
    for name, suffix in (
        ("likes", "likes"),
        ("dislikes", "dislikes"),
        ("shares", "announces"),
        ("comments", "comments"),
    ):
        assert doc[name] == f"{vid}/{suffix}"
    icons = doc["icon"]
    assert [(i["width"], i["height"]) for i in icons] == [(280, 157), (850, 480)]
    assert all(
        i["mediaType"] == "image/jpeg" and i["url"].startswith(instance.url + "/lazy-static/") for i in icons
    )
    board = doc["preview"][0]
    assert board["rel"] == ["storyboard"] and board["url"][0]["tileDuration"] == "PT2S"
    assert board["url"][0]["width"] == 1920 and board["url"][0]["href"].endswith(
        f"/storyboards/{video.uuid}/x.jpg"
    )

    urls = doc["url"]
    assert urls[0] == {"type": "Link", "mediaType": "text/html", "href": vid}
    hls = urls[1]
    assert hls["mediaType"] == "application/x-mpegURL"
    assert hls["href"] == f"{instance.url}/static/streaming-playlists/hls/{video.uuid}/abc-master.m3u8"
    tags = hls["tag"]
    # Infohash tags are PeerTube's swarm ids (sha1 of "2" + master URL + "+V" + index).
    master = hls["href"]
    assert [t["name"] for t in tags if t["type"] == "Infohash"] == [
        hashlib.sha1(f"2{master}+V{index}".encode()).hexdigest() for index in (0, 1)
    ]
    sha = [t for t in tags if t.get("name") == "sha256"]
    assert sha and sha[0]["href"].endswith("abc-segments-sha256.json")
    files = [t for t in tags if t.get("mediaType") == "video/mp4"]
    assert [(f["height"], f["width"], f["size"], f["fps"]) for f in files] == [
        (720, 1280, 720000, 30),
        (360, 640, 360000, 30),
    ]
    assert all(isinstance(f["height"], int) and isinstance(f["size"], int) for f in files)
    torrents = [t for t in tags if t.get("mediaType") == "application/x-bittorrent"]
    magnets = [t for t in tags if t.get("mediaType") == "application/x-bittorrent;x-scheme-handler/magnet"]
    assert len(torrents) == 2 and len(magnets) == 2 and magnets[0]["href"].startswith("magnet:?")
    assert "tr=" in magnets[0]["href"] and f"{720:040x}" in magnets[0]["href"]
    trackers = {u["name"]: u["href"] for u in urls if "tracker" in u.get("rel", [])}
    assert trackers == {
        "tracker-http": f"{instance.url}/tracker/announce",
        "tracker-websocket": f"ws://{instance.settings.public_host}/tracker/socket",
    }

    # Unlisted: nobody in ``to``, Public and the followers in cc. Private: nothing to address.
    async with shoal.db.write() as session:
        (await session.get(Video, video.id)).privacy = Privacy.UNLISTED
    video.privacy = Privacy.UNLISTED
    unlisted = to_ap(shoal, video, renditions)
    assert unlisted["to"] == [] and unlisted["cc"][0] == PUBLIC
    assert f"{instance.url}/accounts/alice/followers" in unlisted["cc"]


async def test_documents_expand_and_round_trip(instance: Instance) -> None:
    shoal = instance.shoal
    video, renditions = await local_video(instance)
    doc = to_ap(shoal, video, renditions)
    expanded = await expand(doc)
    node = expanded[0]
    assert node["@id"] == doc["id"] and node["@type"] == [AS + "Video"]
    assert node[PT + "uuid"][0]["@value"] == video.uuid
    assert node[AS + "likes"][0]["@id"] == doc["likes"]
    assert await expand(create_activity(shoal, video, renditions))

    parsed = parse_video(doc, fetched_from=doc["id"])
    assert parsed.uuid == video.uuid and parsed.remote_url == doc["id"]
    assert parsed.channel_url == video.channel.ap_id and parsed.account_url == video.channel.owner.ap_id
    fields = parsed.fields
    assert fields["name"] == video.name and fields["duration"] == 95 and fields["tags"] == ["demo", "shoal"]
    assert (fields["language"], fields["category"], fields["licence"]) == ("en", 15, 1)
    assert fields["master_playlist"] == media_url(shoal, video, video.master_playlist)
    assert fields["thumbnail"].endswith(".jpg") and fields["preview"] != fields["thumbnail"]
    assert fields["storyboard"]["columns"] == 10 and fields["storyboard"]["tileDuration"] == 2
    assert fields["privacy"] == Privacy.PUBLIC
    assert [(r["height"], r["size"], r["info_hash"]) for r in parsed.renditions] == [
        (720, 720000, f"{720:040x}"),
        (360, 360000, f"{360:040x}"),
    ]
    assert parsed.renditions[0]["playlist_path"].endswith(f"/hls/{video.uuid}/f-720.m3u8")
    assert parsed.renditions[0]["torrent_path"].endswith("-720-hls.torrent")

    # Comments: Note, then Tombstone; both expand and parse back.
    async with shoal.db.read() as session:
        user = await session.scalar(select(User).where(User.username == "alice"))
        session.expunge_all()
    view = await add_comment(shoal, video.uuid, user, "hello *there*")
    async with shoal.db.read() as session:
        comment = await session.get(Comment, view.comment.id)
        ctx = await note_context(shoal, session, comment)
        note = note_to_ap(shoal, comment, ctx)
    assert note["type"] == "Note" and note["inReplyTo"] == doc["id"] and note["mediaType"] == "text/markdown"
    assert (
        note["id"] == f"{doc['id']}/comments/{comment.id}"
        and note["attributedTo"] == video.channel.owner.ap_id
    )
    assert (await expand(note))[0]["@type"] == [AS + "Note"]
    back = parse_note(note)
    assert back.text == "hello *there*" and back.in_reply_to == doc["id"] and back.ap_id == note["id"]
    await soft_delete(shoal, video.uuid, comment.id, user)
    async with shoal.db.read() as session:
        comment = await session.get(Comment, comment.id)
        tomb = note_to_ap(shoal, comment, await note_context(shoal, session, comment))
    assert tomb["type"] == "Tombstone" and tomb["formerType"] == "Note" and tomb["deleted"]
    assert await expand(tomb) and parse_note(tomb).deleted

    # Actor documents (engineer A's) expand too.
    async with shoal.db.read() as session:
        channel = await session.scalar(
            select(Actor).options(joinedload(Actor.owner)).where(Actor.id == video.channel_id)
        )
        session.expunge_all()
    for actor in (channel, channel.owner):
        assert (await expand(actor_to_ap(shoal, actor)))[0]["@id"] == actor.ap_id


def peertube_video(origin: str, video_uuid: str, **changes: Any) -> dict[str, Any]:
    """A Video as a PeerTube 6 instance sends it (notes §3.5)."""
    vid = f"{origin}/videos/watch/{video_uuid}"
    hls = f"{origin}/static/streaming-playlists/hls/{video_uuid}"
    doc: dict[str, Any] = {
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1",
                     {"RsaSignature2017": "https://w3id.org/security#RsaSignature2017"},
                     {"pt": PT, "sc": "http://schema.org/", "uuid": {"@type": "sc:identifier", "@id": "pt:uuid"}}],
        "type": "Video", "id": vid, "name": "Remote demo", "duration": "PT95S", "uuid": video_uuid,
        "language": {"identifier": "fr", "name": "French"}, "category": {"identifier": "2", "name": "Films"},
        "views": 12, "sensitive": False, "waitTranscoding": True, "state": 1, "commentsEnabled": True,
        "canReply": None, "commentsPolicy": 1, "downloadEnabled": True,
        "published": "2024-09-01T10:00:00.000Z", "originallyPublishedAt": None,
        "updated": "2024-09-01T10:05:00.000Z", "uploadDate": "2024-09-01T10:00:00.000Z",
        "tag": [{"type": "Hashtag", "name": "demo"}, {"type": "Hashtag", "name": "x"}],
        "mediaType": "text/markdown", "content": "A **demo**", "support": None, "subtitleLanguage": [],
        "icon": [{"type": "Image", "url": f"{origin}/lazy-static/thumbnails/1f.jpg", "mediaType": "image/jpeg",
                  "width": 280, "height": 157},
                 {"type": "Image", "url": f"{origin}/lazy-static/previews/2e.jpg", "mediaType": "image/jpeg",
                  "width": 850, "height": 480}],
        "aspectRatio": 1.7778,
        "url": [
            {"type": "Link", "mediaType": "text/html", "href": vid},
            {"type": "Link", "mediaType": "application/x-mpegURL", "href": f"{hls}/4b-master.m3u8", "tag": [
                {"type": "Infohash", "name": "5f" * 20},
                {"type": "Link", "name": "sha256", "mediaType": "application/json", "href": f"{hls}/8d-segments-sha256.json"},
                {"type": "Link", "mediaType": "video/mp4", "href": f"{hls}/c1-720-fragmented.mp4", "height": 720,
                 "width": 1280, "size": 9123456, "fps": 30},
                {"type": "Link", "rel": ["metadata", "video/mp4"], "mediaType": "application/json",
                 "href": f"{origin}/api/v1/videos/{video_uuid}/metadata/42", "height": 720, "width": 1280, "fps": 30},
                {"type": "Link", "mediaType": "application/x-bittorrent", "href": f"{origin}/lazy-static/torrents/a7-720-hls.torrent",
                 "height": 720, "width": 1280, "fps": 30},
                {"type": "Link", "mediaType": "application/x-bittorrent;x-scheme-handler/magnet",
                 "href": f"magnet:?xs=x&xt=urn:btih:{'5f' * 20}&dn=Demo", "height": 720, "width": 1280, "fps": 30}]},
            {"type": "Link", "name": "tracker-http", "rel": ["tracker", "http"], "href": f"{origin}/tracker/announce"},
        ],
        "likes": f"{vid}/likes", "dislikes": f"{vid}/dislikes", "shares": f"{vid}/announces",
        "comments": f"{vid}/comments", "hasParts": f"{vid}/chapters",
        "attributedTo": [{"type": "Person", "id": f"{origin}/accounts/root"},
                         {"type": "Group", "id": f"{origin}/video-channels/root_channel"}],
        "isLiveBroadcast": False, "liveSaveReplay": None, "permanentLive": None, "latencyMode": None,
        "to": [PUBLIC], "cc": [f"{origin}/accounts/root/followers"],
    }  # fmt: skip
    doc.update(changes)
    return doc


async def test_peertube_video_is_stored_and_listed(instance: Instance) -> None:
    shoal = instance.shoal
    origin = "http://peertube.example:9000"
    account = await remote_actor(instance, f"{origin}/accounts/root", ActorKind.PERSON, "root")
    channel = await remote_actor(
        instance, f"{origin}/video-channels/root_channel", ActorKind.GROUP, "root_channel", account
    )
    video_uuid = "9c9de5e8-0a1b-4f2c-9d3e-1a2b3c4d5e6f"
    doc = peertube_video(origin, video_uuid)
    assert await expand(doc)
    await on_create_video(shoal, {"type": "Create", "id": doc["id"] + "/activity", "object": doc}, account)

    status, page = await instance.client.get("/api/v1/videos", params={"isLocal": "false"})
    assert status == 200 and page["total"] == 1, page
    item = page["data"][0]
    assert item["uuid"] == video_uuid and item["isLocal"] is False and item["url"] == doc["id"]
    assert item["channel"]["host"] == "peertube.example:9000" and item["views"] == 12
    status, details = await instance.client.get(f"/api/v1/videos/{video_uuid}")
    assert status == 200, details
    playlist = details["streamingPlaylists"][0]
    assert playlist["playlistUrl"] == f"{origin}/static/streaming-playlists/hls/{video_uuid}/4b-master.m3u8"
    file = playlist["files"][0]
    assert file["fileUrl"].endswith("c1-720-fragmented.mp4") and file["resolution"]["id"] == 720
    assert file["torrentUrl"].endswith("a7-720-hls.torrent") and "5f5f" in file["magnetUri"]
    assert (
        details["tags"] == ["demo"] and details["language"]["id"] == "fr" and details["category"]["id"] == 2
    )
    status, local = await instance.client.get("/api/v1/videos", params={"isLocal": "true"})
    assert local["total"] == 0

    # Update refreshes; a foreign host cannot update; Delete removes it with its comments.
    await on_create_video(
        shoal, {"type": "Update", "object": peertube_video(origin, video_uuid, name="Renamed")}, account
    )
    other = await remote_actor(instance, "http://evil.example/accounts/x", ActorKind.PERSON, "x")
    await on_create_video(
        shoal, {"type": "Update", "object": peertube_video(origin, video_uuid, name="Hijacked")}, other
    )
    status, details = await instance.client.get(f"/api/v1/videos/{video_uuid}")
    assert details["name"] == "Renamed"
    await on_like(shoal, {"type": "Like", "id": "http://evil.example/likes/1", "object": doc["id"]}, other)
    async with shoal.db.read() as session:
        assert await session.scalar(select(VideoRate.kind)) == "like"
    await on_delete(shoal, {"type": "Delete", "object": doc["id"]}, other)
    assert (await instance.client.get(f"/api/v1/videos/{video_uuid}"))[0] == 200
    await on_delete(shoal, {"type": "Delete", "object": doc["id"]}, channel)
    assert (await instance.client.get(f"/api/v1/videos/{video_uuid}"))[0] == 404

    # Unlisted (Public in cc only) is stored but not listed.
    unlisted = peertube_video(
        origin, "1c9de5e8-0a1b-4f2c-9d3e-1a2b3c4d5e6f", to=[f"{origin}/accounts/root/followers"], cc=[PUBLIC]
    )
    await on_create_video(shoal, {"type": "Create", "object": unlisted}, account)
    status, page = await instance.client.get("/api/v1/videos")
    assert page["total"] == 0
    status, details = await instance.client.get("/api/v1/videos/1c9de5e8-0a1b-4f2c-9d3e-1a2b3c4d5e6f")
    assert status == 200 and details["privacy"]["id"] == Privacy.UNLISTED


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            {
                "icon": [
                    {
                        "type": "Image",
                        "url": "http://x.example/a.png",
                        "mediaType": "image/png",
                        "width": 1,
                        "height": 1,
                    }
                ]
            },
            "icon",
        ),
        ({"attributedTo": [{"type": "Person", "id": "http://x.example/accounts/a"}]}, "Group"),
        ({"duration": "95"}, "duration"),
        ({"name": "ab"}, "name"),
        ({"uuid": "nope"}, "uuid"),
        ({"views": "12"}, "views"),
        ({"mediaType": "text/plain"}, "content"),
    ],
)
def test_invalid_videos_are_refused(change: dict[str, Any], reason: str) -> None:
    doc = peertube_video("http://x.example", "9c9de5e8-0a1b-4f2c-9d3e-1a2b3c4d5e6f", **change)
    with pytest.raises(InvalidObject, match=reason):
        parse_video(doc)
    with pytest.raises(InvalidObject, match="same host|host"):
        parse_video(
            peertube_video("http://x.example", "9c9de5e8-0a1b-4f2c-9d3e-1a2b3c4d5e6f"),
            fetched_from="http://y.example/v",
        )


async def test_fixtures_are_ingested(instance: Instance) -> None:
    """Mastodon replies (create.json, the body of http-signature.json) become comments on the
    PeerTube video they answer; the PeerTube Announce becomes a share; Delete tombstones."""
    shoal = instance.shoal
    create = fixture("create.json")
    signed_body = fixture("http-signature.json")["body"]
    for doc in (create, signed_body):
        assert await expand(doc)
    video_url = create["object"]["inReplyTo"]
    origin = "http://localhost:9000"
    owner = await remote_actor(instance, f"{origin}/accounts/ronan", ActorKind.PERSON, "ronan")
    channel = await remote_actor(
        instance, f"{origin}/video-channels/ronan_channel", ActorKind.GROUP, "ronan_channel", owner
    )
    await store_remote_video(shoal, parse_video(peertube_video(origin, video_url.rsplit("/", 1)[1])), channel,
                             peertube_video(origin, video_url.rsplit("/", 1)[1]))  # fmt: skip
    mastodon = await remote_actor(instance, create["actor"], ActorKind.PERSON, "ronan2")

    for activity in (create, signed_body):
        await on_create_note(shoal, activity, mastodon)
        await on_create_note(shoal, activity, mastodon)  # applied once
    async with shoal.db.read() as session:
        comments = list(await session.scalars(select(Comment).order_by(Comment.id)))
    assert [c.ap_id for c in comments] == [create["object"]["id"], signed_body["object"]["id"]]
    first = comments[0]
    assert first.account_id == mastodon.id and first.in_reply_to_id is None
    assert "zerg" in first.text and "<p>" in first.text and "h-card" in first.text
    status, page = await instance.client.get(f"/api/v1/videos/{video_url.rsplit('/', 1)[1]}/comment-threads")
    assert status == 200 and page["total"] == 2
    assert page["data"][1]["account"]["host"] == "localhost:3000"

    # A script in remote HTML never survives.
    evil = copy.deepcopy(create)
    evil["object"]["id"] += "9"
    evil["object"]["content"] = (
        '<p>hi<script>alert(1)</script><a href="javascript:x()" onclick="y()">z</a></p>'
    )
    await on_create_note(shoal, evil, mastodon)
    async with shoal.db.read() as session:
        text = await session.scalar(select(Comment.text).where(Comment.ap_id == evil["object"]["id"]))
    assert text is not None and "script" not in text and "javascript" not in text and "onclick" not in text

    # Someone else cannot post as ronan2; only the author deletes.
    stranger = await remote_actor(instance, "http://localhost:3001/users/x", ActorKind.PERSON, "x")
    forged = copy.deepcopy(create)
    forged["object"]["id"] += "forged"
    await on_create_note(shoal, forged, stranger)
    await on_delete(shoal, {"type": "Delete", "object": create["object"]["id"]}, stranger)
    await on_delete(
        shoal,
        {"type": "Delete", "object": {"type": "Tombstone", "id": signed_body["object"]["id"]}},
        mastodon,
    )
    async with shoal.db.read() as session:
        rows = {c.ap_id: c for c in await session.scalars(select(Comment))}
    assert forged["object"]["id"] not in rows
    assert rows[create["object"]["id"]].deleted_at is None
    assert (
        rows[signed_body["object"]["id"]].deleted_at is not None
        and rows[signed_body["object"]["id"]].text == ""
    )

    # The PeerTube Announce (no @context): a share of a known video by an Application actor.
    announce = fixture("announce-without-context.json")
    app_origin = "http://127.0.0.1:9002"
    pt_app = await remote_actor(instance, announce["actor"], ActorKind.APPLICATION, "peertube")
    pt_owner = await remote_actor(instance, f"{app_origin}/accounts/root", ActorKind.PERSON, "root")
    pt_channel = await remote_actor(
        instance, f"{app_origin}/video-channels/root_channel", ActorKind.GROUP, "root_channel", pt_owner
    )
    shared_uuid = announce["object"].rsplit("/", 1)[1]
    shared = peertube_video(app_origin, shared_uuid)
    await store_remote_video(shoal, parse_video(shared), pt_channel, shared)
    await on_announce(shoal, announce, pt_app)
    await on_announce(shoal, announce, pt_app)
    async with shoal.db.read() as session:
        shares = list(await session.scalars(select(VideoShare)))
    assert [(s.ap_id, s.actor_id) for s in shares] == [(announce["id"], pt_app.id)]
