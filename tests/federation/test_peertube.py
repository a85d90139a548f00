"""What a real PeerTube 6.3 sent to Shoal and fetched from it, replayed against a real instance.

The captures (``tests/federation/data/peertube-6.3/``, see :mod:`tests.federation.peertube`)
come from a run of PeerTube 6.3 and Shoal following each other. Each test replays the
requests PeerTube made, signed with PeerTube's own keys, and checks what Shoal must answer
for PeerTube to keep working: Accepts on the follower's own inbox, every URL it fetches
answering ActivityPub JSON, repeated activity ids applied again, comments not sent back to
their instance, and every document Shoal sends passing PeerTube's validators.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select, update

from federation import conformance
from federation.fanout import on_publish
from instance.models import Comment, Video, WorkItem
from instance.services.views import flush_views
from tests.conftest import Instance, InstanceFactory
from tests.federation.conftest import follow_state, get_json, wait_for, work_rows
from tests.federation.peertube import RecordedPeerTube, accepted, fill, load, posted

AP = {"Accept": "application/activity+json"}
CHANNEL_FOLLOW, INSTANCE_FOLLOW, COMMENT, LIKE = 0, 1, 2, 3
VIEWS = range(4, 11)
UNDO_LIKE, LIKE_AGAIN = 24, 25
UNFOLLOW_REFOLLOW = (26, 27, 28, 29)
ACCEPT_OF_OUR_FOLLOW, ANNOUNCE, UPDATES, RENAME, DELETE = 12, 13, (15, 16, 20, 21, 22, 23), 30, 31


async def test_follow_is_accepted_on_the_followers_own_inbox_and_refollows_work(
    shoal: Instance, peertube: RecordedPeerTube
) -> None:
    root, app = f"{peertube.url}/accounts/root", f"{peertube.url}/accounts/peertube"
    channel, instance_actor = f"{shoal.url}/video-channels/admin_channel", f"{shoal.url}/accounts/peertube"
    for index in (CHANNEL_FOLLOW, INSTANCE_FOLLOW):
        status, body = await peertube.send(index)
        assert status == 202, body
    await accepted(shoal, root, channel)
    await accepted(shoal, app, instance_actor)
    accepts = await posted(peertube, "Accept", 2)
    # PeerTube applies an Accept only on the follower's own inbox (process-accept.ts).
    assert sorted(path for path, _, _ in accepts) == ["/accounts/peertube/inbox", "/accounts/root/inbox"]
    assert all(status == 204 for _, _, status in accepts), accepts

    # Unsubscribe and subscribe again, twice, as PeerTube does: the same Follow and Undo ids.
    for undo, follow in (UNFOLLOW_REFOLLOW[:2], UNFOLLOW_REFOLLOW[2:]):
        status, _ = await peertube.send(undo)
        assert status == 202

        async def gone() -> bool:
            return await follow_state(shoal.shoal, root, channel) is None

        await wait_for(gone, what="the unfollow applied")
        status, _ = await peertube.send(follow)
        assert status == 202
        await accepted(shoal, root, channel)
    accepts = await posted(peertube, "Accept", 4)
    assert [path for path, _, _ in accepts].count("/accounts/root/inbox") == 3


async def test_every_url_peertube_fetches_answers_activitypub_json(
    shoal: Instance, peertube: RecordedPeerTube
) -> None:
    video = peertube.video  # type: ignore[attr-defined]
    status, _ = await peertube.send(INSTANCE_FOLLOW)
    assert status == 202
    await accepted(shoal, f"{peertube.url}/accounts/peertube", f"{shoal.url}/accounts/peertube")
    # The captured run's paths, less those naming rows of that run's database (comment and
    # actor ids, another video) that this instance does not have.
    paths = [
        entry["path"]
        for entry in load("fetches.json")
        if "{video_uuid}" in entry["path"] or "/videos/" not in entry["path"]
    ]
    paths = [p.replace("{video_uuid}", video.uuid) for p in paths if not re.search(r"/\d+$", p)]
    assert any(p.endswith("/chapters") for p in paths) and any(p.endswith("/playlists") for p in paths)
    for path in paths:
        async with shoal.client.session.get(shoal.url + path, headers=AP) as response:
            assert response.status == 200, path
            content_type = response.headers["Content-Type"]
            wanted = "application/json" if path.startswith("/.well-known/") else "application/activity+json"
            assert content_type.startswith(wanted), (path, content_type)
            doc = await response.json(content_type=None)
        assert isinstance(doc, dict), path
        if path == f"/videos/watch/{video.uuid}":
            assert doc["content"] is None  # no description: null, never ""
            assert conformance.problems(doc) == []

    # Publishing sends a Create PeerTube's validators take (400 otherwise, see peertube.py).
    await on_publish(shoal.shoal, video.id)
    creates = await posted(peertube, "Create", 1)
    assert creates[0][0] == "/inbox" and creates[0][2] == 204, creates[0]
    assert creates[0][1]["object"]["content"] is None


async def test_a_peertube_comment_is_forwarded_to_other_followers_but_not_back(
    shoal: Instance, peertube: RecordedPeerTube, make_instance: InstanceFactory
) -> None:
    video = peertube.video  # type: ignore[attr-defined]
    other = await make_instance("other")
    bob = await other.user_client("bob")
    status, body = await bob.post(
        "/api/v1/users/me/subscriptions", json={"uri": f"admin_channel@{shoal.settings.public_host}"}
    )
    assert status == 204, body
    await accepted(shoal, f"{other.url}/accounts/bob", f"{shoal.url}/video-channels/admin_channel")
    status, _ = await peertube.send(CHANNEL_FOLLOW)
    assert status == 202
    await accepted(shoal, f"{peertube.url}/accounts/root", f"{shoal.url}/video-channels/admin_channel")

    status, _ = await peertube.send(COMMENT)
    assert status == 202

    async def stored() -> Comment | None:
        async with shoal.shoal.db.read() as session:
            return await session.scalar(select(Comment).where(Comment.video_id == video.id))

    comment = await wait_for(stored, what="the PeerTube comment stored")
    assert comment.text == "Hello again from PeerTube"

    async def forwarded() -> list[WorkItem]:
        async with shoal.shoal.db.read() as session:
            rows = await session.scalars(select(WorkItem).where(WorkItem.kind == "deliver"))
            return [row for row in rows if row.payload.get("type") == "Create"]

    rows = await wait_for(forwarded, what="the comment forwarded")
    inboxes = {row.payload["inbox"] for row in rows}
    assert any(inbox.startswith(other.url) for inbox in inboxes), inboxes
    assert not any(inbox.startswith(peertube.url) for inbox in inboxes), inboxes
    assert peertube.posted("Create") == []


async def test_likes_undone_and_given_again_and_views(shoal: Instance, peertube: RecordedPeerTube) -> None:
    video = peertube.video  # type: ignore[attr-defined]

    async def likes(expected: int) -> None:
        async def check() -> bool:
            async with shoal.shoal.db.read() as session:
                return await session.scalar(select(Video.likes).where(Video.id == video.id)) == expected

        await wait_for(check, what=f"{expected} likes")

    # The Like id is <account>/likes/<video> every time; the second Like must count again.
    for index, expected in ((LIKE, 1), (UNDO_LIKE, 0), (LIKE_AGAIN, 1)):
        status, _ = await peertube.send(index)
        assert status == 202
        await likes(expected)

    # Views: those with ``expires`` are "watching" pings, the others one counted viewer each on
    # PeerTube's side; here one instance is one viewer per window (test_hostile_remote).
    counted = [i for i in VIEWS if "expires" not in peertube.inbound()[i]["body"]]
    assert len(counted) == 3
    for index in VIEWS:
        status, _ = await peertube.send(index)
        assert status == 202

    async def views() -> bool:
        await flush_views(shoal.shoal)
        async with shoal.shoal.db.read() as session:
            return await session.scalar(select(Video.views).where(Video.id == video.id)) == 1

    await wait_for(views, what="the instance's view counted")


async def test_a_peertube_channel_followed_announced_updated_and_deleted(
    shoal: Instance, peertube: RecordedPeerTube
) -> None:
    admin = shoal.admin  # type: ignore[attr-defined]
    status, body = await admin.post(
        "/api/v1/users/me/subscriptions", json={"uri": f"root_channel@{peertube.host}"}
    )
    assert status == 204, body
    follows = await posted(peertube, "Follow", 1)
    assert follows[0][2] == 204, follows  # PeerTube takes a Follow on its shared inbox
    status, _ = await peertube.send(ACCEPT_OF_OUR_FOLLOW)
    assert status == 202
    await accepted(shoal, f"{shoal.url}/accounts/admin", f"{peertube.url}/video-channels/root_channel")

    video_url = f"{peertube.url}/videos/watch/5b4b7c93-d9f2-4190-83f2-caa28bffc266"
    status, _ = await peertube.send(ANNOUNCE)
    assert status == 202

    async def named(name: str) -> Video | None:
        async with shoal.shoal.db.read() as session:
            row = await session.scalar(select(Video).where(Video.remote_url == video_url))
            return row if row is not None and row.name == name else None

    stored = await wait_for(lambda: named("PeerTube clip P"), what="the announced video stored")
    assert stored.master_playlist and stored.master_playlist.startswith(peertube.url)
    for index in (*UPDATES, RENAME):
        status, _ = await peertube.send(index)
        assert status == 202
    await wait_for(lambda: named("PeerTube clip P renamed"), what="the rename applied")
    status, _ = await peertube.send(DELETE)
    assert status == 202

    async def deleted() -> bool:
        async with shoal.shoal.db.read() as session:
            return await session.scalar(select(Video.id).where(Video.remote_url == video_url)) is None

    await wait_for(deleted, what="the video deleted")


async def test_every_captured_activity_is_taken(shoal: Instance, peertube: RecordedPeerTube) -> None:
    """All 33 activities of the run, in order, answered as Shoal answered PeerTube then (202)."""
    for index, entry in enumerate(peertube.inbound()):
        status, body = await peertube.send(index)
        assert status == entry["answered"] == 202, (index, entry["body"]["type"], body)


async def test_what_shoal_sent_peertube_passes_its_validators() -> None:
    """Every activity Shoal POSTed during the run was taken (2xx) and passes the conformance
    layer; the layer refuses the empty description PeerTube refused before."""
    hosts = {"shoal_host": "127.0.0.1:9000", "peertube_host": "127.0.0.1:9001"}
    names = {**hosts, "shoal": "http://127.0.0.1:9000", "peertube": "http://127.0.0.1:9001",
             "video_uuid": "fae3aa0e-83cb-4328-89c0-0defc8668027"}  # fmt: skip
    outbound = fill(load("outbound.json"), names)
    assert outbound and all(entry["answered"] in (200, 202, 204) for entry in outbound)
    for entry in outbound:
        assert conformance.problems(entry["body"]) == [], entry["body"]["id"]
    objects = [entry["body"]["object"] for entry in outbound]
    video = next(obj for obj in objects if isinstance(obj, dict) and obj["type"] == "Video")
    assert conformance.problems({**video, "content": ""})


async def test_a_shoal_video_stays_after_peertube_refreshes_it(
    shoal: Instance, peertube: RecordedPeerTube
) -> None:
    """PeerTube's refresh re-fetches the video and every URL it names; a 404 deletes its copy."""
    video = peertube.video  # type: ignore[attr-defined]
    async with shoal.shoal.db.write() as session:
        await session.execute(update(Video).where(Video.id == video.id).values(description="Now described."))
    status, doc = await get_json(shoal, f"/videos/watch/{video.uuid}", headers=AP)
    assert status == 200 and doc["content"] == "Now described."
    for key in ("likes", "dislikes", "shares", "comments", "hasParts"):
        status, named = await get_json(shoal, doc[key].removeprefix(shoal.url), headers=AP)
        assert status == 200 and isinstance(named, dict), (key, status)


async def test_an_older_update_arriving_late_changes_nothing(
    shoal: Instance, peertube: RecordedPeerTube
) -> None:
    """PeerTube's Updates are applied by concurrent jobs; the rename must survive older ones."""
    admin = shoal.admin  # type: ignore[attr-defined]
    uri = f"root_channel@{peertube.host}"
    assert (await admin.post("/api/v1/users/me/subscriptions", json={"uri": uri}))[0] == 204
    status, _ = await peertube.send(ACCEPT_OF_OUR_FOLLOW)
    assert status == 202
    await accepted(shoal, f"{shoal.url}/accounts/admin", f"{peertube.url}/video-channels/root_channel")
    video_url = f"{peertube.url}/videos/watch/5b4b7c93-d9f2-4190-83f2-caa28bffc266"
    for index in (RENAME, *UPDATES):  # the newest first, then every older version
        status, _ = await peertube.send(index)
        assert status == 202

    async def applied() -> bool:
        rows = [row for row in await work_rows(shoal.shoal, "inbox") if row.state == "succeeded"]
        return len(rows) >= 1 + len(UPDATES) + 1

    await wait_for(applied, what="every Update applied")
    async with shoal.shoal.db.read() as session:
        name = await session.scalar(select(Video.name).where(Video.remote_url == video_url))
    assert name == "PeerTube clip P renamed"


# Keys whose values name ActivityPub documents (PeerTube dereferences them); ``inbox`` and
# ``sharedInbox`` are POST-only, ``url``/``icon`` links are pages and media.
NAMING_KEYS = frozenset({
    "id", "actor", "object", "attributedTo", "inReplyTo", "owner", "likes", "dislikes", "shares",
    "comments", "hasParts", "outbox", "followers", "following", "playlists", "first", "last",
    "next", "prev", "partOf", "orderedItems", "items",
})  # fmt: skip


def _named(doc: Any, key: str | None = None) -> set[str]:
    if isinstance(doc, str):
        return {doc} if key in NAMING_KEYS else set()
    if isinstance(doc, list):
        return set().union(*(_named(item, key) for item in doc)) if doc else set()
    if isinstance(doc, dict):
        return set().union(*(_named(value, name) for name, value in doc.items() if name != "@context"))
    return set()


async def test_every_url_we_name_answers_activitypub_json(
    shoal: Instance, peertube: RecordedPeerTube, make_instance: InstanceFactory
) -> None:
    """Crawl from our actors and video through every URL they name on this instance:
    collections, their pages and items, comments, ratings, shares, chapters, playlists."""
    video = peertube.video  # type: ignore[attr-defined]
    other = await make_instance("other")
    bob = await other.user_client("bob")
    uri = f"admin_channel@{shoal.settings.public_host}"
    assert (await bob.post("/api/v1/users/me/subscriptions", json={"uri": uri}))[0] == 204
    await accepted(shoal, f"{other.url}/accounts/bob", f"{shoal.url}/video-channels/admin_channel")
    admin = shoal.admin  # type: ignore[attr-defined]
    path = f"/api/v1/videos/{video.uuid}"
    assert (await admin.post(f"{path}/comment-threads", json={"text": "First!"}))[0] == 200
    assert (await admin.put(f"{path}/rate", json={"rating": "like"}))[0] == 204
    await on_publish(shoal.shoal, video.id)  # Announces by the channel and the instance
    start = [f"{shoal.url}/accounts/admin", f"{shoal.url}/video-channels/admin_channel",
             f"{shoal.url}/accounts/peertube", f"{shoal.url}/videos/watch/{video.uuid}"]  # fmt: skip
    seen: set[str] = set()
    queue = list(start)
    while queue:
        url = queue.pop()
        page = url.split("#")[0]
        if page in seen or not page.startswith(shoal.url + "/"):
            continue
        seen.add(page)
        async with shoal.client.session.get(page, headers=AP, allow_redirects=False) as response:
            assert response.status == 200, page
            assert response.headers["Content-Type"].startswith("application/activity+json"), page
            doc = await response.json(content_type=None)
        assert isinstance(doc, dict) and doc.get("id", page).split("?")[0] in (page.split("?")[0], page), page
        queue += sorted(_named(doc))
    assert len(seen) < 400
    kinds = {path.rsplit("/", 1)[-1].split("?")[0] for path in seen}
    for expected in ("likes", "dislikes", "announces", "comments", "chapters", "playlists", "outbox",
                     "followers", "following"):  # fmt: skip
        assert expected in kinds, (expected, sorted(seen))
    assert any("/likes/" in url for url in seen) and any("/comments/" in url for url in seen)


@pytest.mark.parametrize("capture", ["run-seams.json", "run-webseed.json"])
def test_a_later_peertube_run_parses_and_what_shoal_sent_conforms(capture: str) -> None:
    """Later runs of Shoal and PeerTube 6.3 following each other both ways (PeerTube follows a
    Shoal channel, gets its video and its rename, comments on it; Shoal follows a PeerTube
    channel, gets its video, comments on it): ``run-seams.json``, and ``run-webseed.json`` with
    the seeder on by default and torrents whose web seed is the web-seed route. Every activity
    PeerTube sent and its Video document read as they did then; every activity Shoal sent (all
    answered 2xx) passes PeerTube's validators."""
    from federation.note_store import parse_note
    from federation.video_parse import parse_video

    names = {"shoal": "http://127.0.0.1:9000", "peertube": "http://127.0.0.1:9001",
             "shoal_host": "127.0.0.1:9000", "peertube_host": "127.0.0.1:9001"}  # fmt: skip
    run = fill(load(capture), names)
    kinds = [(a["type"], (a.get("object") or {}).get("type") if isinstance(a.get("object"), dict) else None)
             for a in run["inbound"]]  # fmt: skip
    assert ("Create", "Note") in kinds and ("Update", "Video") in kinds and ("Follow", None) in kinds
    for activity in run["inbound"]:
        obj = activity.get("object")
        if isinstance(obj, dict) and obj.get("type") == "Video":
            assert parse_video(obj).uuid
        if isinstance(obj, dict) and obj.get("type") == "Note":
            assert parse_note(obj).text == "Hello from PeerTube"
    video = parse_video(run["peertube_video"], fetched_from=run["peertube_video"]["id"])
    assert video.fields["name"] == "PeerTube to Shoal" and video.renditions
    assert [a["type"] for a in run["outbound"]].count("Update") >= 1
    for body in run["outbound"]:
        assert conformance.problems(body) == [], body["id"]
    renamed = [
        b["object"] for b in run["outbound"] if b["type"] == "Update" and b["object"]["type"] == "Video"
    ]
    assert any(v["name"] == "Shoal to PeerTube, renamed" for v in renamed)
