"""What a hostile or broken remote server must not get: interactions with videos it cannot
see, objects on another host, replayed or stale signatures, inflated views, and a pause of
our deliveries that outgrows its downtime.

The remote is the captured PeerTube 6.3 (:mod:`tests.federation.peertube`): its real
activities, signed with its keys, changed where a test needs a hostile variant.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import time
from datetime import timedelta
from email.utils import formatdate
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from sqlalchemy import func, select, update

from federation.delivery import deliver
from federation.hosts import pause_for, probe_paused_hosts, record_failure
from instance.models import (
    Actor,
    ActorKind,
    Comment,
    Privacy,
    RemoteHost,
    Video,
    VideoShare,
    VideoState,
    utcnow,
)
from instance.services.views import flush_views
from tests.conftest import Instance
from tests.federation.conftest import wait_for, work_rows
from tests.federation.peertube import RecordedPeerTube
from tests.federation.test_peertube import COMMENT, LIKE, VIEWS

COUNTED_VIEW = VIEWS[3]  # a View without "expires": one counted viewer


async def _applied(shoal: Instance, count: int) -> None:
    async def check() -> bool:
        rows = await work_rows(shoal.shoal, "inbox")
        return len(rows) >= count and all(row.state in ("succeeded", "failed") for row in rows)

    await wait_for(check, what=f"{count} received activities applied")


async def _counts(shoal: Instance, video: Video) -> tuple[int, int, int, int]:
    """Comments, likes, views and shares of ``video``."""
    await flush_views(shoal.shoal)
    async with shoal.shoal.db.read() as session:
        row = await session.get(Video, video.id)
        comments = await session.scalar(select(func.count(Comment.id)).where(Comment.video_id == video.id))
        shares = await session.scalar(
            select(func.count(VideoShare.id)).where(VideoShare.video_id == video.id)
        )
        return int(comments or 0), row.likes, row.views, int(shares or 0)


def _announce(peertube: RecordedPeerTube, shoal: Instance, video: Video) -> dict[str, Any]:
    return {"@context": "https://www.w3.org/ns/activitystreams", "type": "Announce",
            "id": f"{peertube.url}/videos/watch/{video.uuid}/announces/{secrets.token_hex(4)}",
            "actor": f"{peertube.url}/accounts/peertube",
            "object": f"{shoal.url}/videos/watch/{video.uuid}", "to": [], "cc": []}  # fmt: skip


async def test_remote_actors_cannot_touch_videos_they_cannot_see(
    shoal: Instance, peertube: RecordedPeerTube
) -> None:
    video = peertube.video  # type: ignore[attr-defined]
    sent = 0
    for hidden in ({"privacy": Privacy.PRIVATE}, {"privacy": Privacy.INTERNAL},
                   {"state": VideoState.PROBED}, {"hidden": True}):  # fmt: skip
        values = {"privacy": Privacy.PUBLIC, "state": VideoState.PUBLISHED, "hidden": False, **hidden}
        async with shoal.shoal.db.write() as session:
            await session.execute(update(Video).where(Video.id == video.id).values(**values))
        for index in (COMMENT, LIKE, COUNTED_VIEW):
            assert (await peertube.send(index))[0] == 202
        assert (await peertube.send(LIKE, body=_announce(peertube, shoal, video)))[0] == 202
        sent += 4
        await _applied(shoal, sent)
        assert await _counts(shoal, video) == (0, 0, 0, 0), hidden

    # The same activities count once the video is public again: the checks above can fail.
    async with shoal.shoal.db.write() as session:
        await session.execute(
            update(Video)
            .where(Video.id == video.id)
            .values(privacy=Privacy.PUBLIC, state=VideoState.PUBLISHED, hidden=False)
        )
    for index in (COMMENT, LIKE, COUNTED_VIEW):
        assert (await peertube.send(index))[0] == 202
    assert (await peertube.send(LIKE, body=_announce(peertube, shoal, video)))[0] == 202
    await _applied(shoal, sent + 4)
    assert await _counts(shoal, video) == (1, 1, 1, 1)


async def test_an_object_on_another_host_than_its_sender_is_refused(
    shoal: Instance, peertube: RecordedPeerTube
) -> None:
    video = peertube.video  # type: ignore[attr-defined]
    create = peertube.inbound()[COMMENT]["body"]
    for kind in ("Create", "Update"):
        squatted = {**create["object"], "id": f"http://elsewhere.example/comments/{kind}",
                    "url": f"http://elsewhere.example/comments/{kind}"}  # fmt: skip
        body = {**create, "type": kind, "id": f"{peertube.url}/squat/{kind}", "object": squatted}
        assert (await peertube.send(COMMENT, body=body))[0] == 202
    await _applied(shoal, 2)
    assert (await _counts(shoal, video))[0] == 0
    assert (await peertube.send(COMMENT))[0] == 202  # the genuine one is stored
    await _applied(shoal, 3)
    assert (await _counts(shoal, video))[0] == 1


def _signed_with_created(url: str, body: bytes, key_id: str, pem: str, created: int, expires: int | None,
                         with_date: bool) -> dict[str, str]:  # fmt: skip
    """Headers of a POST signed over ``(created)`` (and ``(expires)``), as hs2019 signers do."""
    host = url.split("/")[2]
    digest = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
    path = "/" + url.split("/", 3)[3]
    lines = [("(request-target)", f"post {path}"), ("host", host), ("(created)", str(created))]
    if expires is not None:
        lines.append(("(expires)", str(expires)))
    headers = {"Host": host, "Digest": digest, "Content-Type": "application/activity+json"}
    if with_date:
        headers["Date"] = formatdate(usegmt=True)
        lines.append(("date", headers["Date"]))
    lines.append(("digest", digest))
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    signed = "\n".join(f"{name}: {value}" for name, value in lines).encode()
    raw = key.sign(signed, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr]
    names, value = " ".join(name for name, _ in lines), base64.b64encode(raw).decode()
    params = f'keyId="{key_id}",algorithm="hs2019",headers="{names}",signature="{value}"'
    params += f',created="{created}"' + (f',expires="{expires}"' if expires is not None else "")
    headers["Signature"] = params
    return headers


async def test_created_and_expires_are_held_to_the_clock(shoal: Instance, peertube: RecordedPeerTube) -> None:
    actor = f"{peertube.url}/accounts/root"
    pem = peertube.keys()[actor]
    url = shoal.url + "/inbox"
    now = int(time.time())
    cases = [  # (created, expires, also Date, expected status)
        (now, None, False, 202),
        (now - 3600, None, False, 401),  # an hour-old (created) alone: stale
        (now + 3600, None, False, 401),  # from the future
        (now - 60, now - 10, True, 401),  # expired, even with a fresh Date
        (now, now + 300, False, 202),
    ]
    async with aiohttp.ClientSession() as http:
        for created, expires, with_date, expected in cases:
            like = {**peertube.inbound()[LIKE]["body"], "id": f"{actor}/likes/x{secrets.token_hex(3)}"}
            body = json.dumps(like).encode()
            headers = _signed_with_created(url, body, actor, pem, created, expires, with_date)
            async with http.post(url, data=body, headers=headers) as response:
                assert response.status == expected, (created - now, expires, await response.text())


async def test_an_activity_without_id_is_not_replayable(shoal: Instance, peertube: RecordedPeerTube) -> None:
    """A Flag carries no id: the same signed request sent twice is one report."""
    from instance.models import AbuseReport
    from tests.federation.conftest import signed_post

    video = peertube.video  # type: ignore[attr-defined]
    actor = f"{peertube.url}/accounts/peertube"
    flag = {"@context": "https://www.w3.org/ns/activitystreams", "type": "Flag", "actor": actor,
            "object": [f"{shoal.url}/videos/watch/{video.uuid}"], "content": "Spam, spam"}  # fmt: skip
    sent: list[tuple[dict[str, str], bytes]] = []

    def keep(headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
        sent.append((dict(headers), body))
        return headers, body

    status, _ = await signed_post(
        shoal.url + "/inbox", flag, key_id=actor, private_pem=peertube.keys()[actor], tamper=keep
    )
    assert status == 202
    async with aiohttp.ClientSession() as http:
        for _ in range(2):  # the captured request, replayed as it was
            async with http.post(shoal.url + "/inbox", data=sent[0][1], headers=sent[0][0]) as response:
                assert response.status == 202
    # A new request (a new Date, so a new signature) with the same content is a new report.
    await asyncio.sleep(1.1)
    assert (await signed_post(shoal.url + "/inbox", flag, key_id=actor, private_pem=peertube.keys()[actor]))[
        0
    ] == 202
    await _applied(shoal, 2)

    async def reports() -> int:
        async with shoal.shoal.db.read() as session:
            return int(await session.scalar(select(func.count(AbuseReport.id))) or 0)

    assert await reports() == 2 and len(await work_rows(shoal.shoal, "inbox")) == 2


async def test_remote_views_count_once_per_instance_and_window(
    shoal: Instance, peertube: RecordedPeerTube
) -> None:
    """PeerTube sends one View per viewer, with fresh ids, all from its instance actor: an
    instance counts as one viewer per window, as a local viewer does."""
    video = peertube.video  # type: ignore[attr-defined]
    for index in VIEWS:
        assert (await peertube.send(index))[0] == 202
    view = peertube.inbound()[COUNTED_VIEW]["body"]
    for n in range(20):  # a flood of fresh ids
        assert (await peertube.send(COUNTED_VIEW, body={**view, "id": f"{view['id']}-{n}"}))[0] == 202
    await _applied(shoal, 20 + 3)  # the watching pings share one id: fewer rows
    assert (await _counts(shoal, video))[2] == 1


# ---------------------------------------------------------------- delivery pauses


async def test_a_pause_follows_the_downtime_and_never_overflows(shoal: Instance) -> None:
    host, t0 = "down.example", utcnow()

    async def state() -> RemoteHost:
        async with shoal.shoal.db.read() as session:
            row = await session.get(RemoteHost, host)
            assert row is not None
            return row

    for seconds in range(0, 60, 2):  # a batch's rows failing within one round count once
        await record_failure(shoal.shoal, host, "refused", now=t0 + timedelta(seconds=seconds))
    assert (await state()).failures == 1 and (await state()).paused_until is None
    for minutes in (1, 2, 3, 4):
        await record_failure(shoal.shoal, host, "refused", now=t0 + timedelta(minutes=minutes))
    row = await state()
    # Four minutes down: paused for four minutes (it was sixteen), not for 2^failures.
    assert row.failures == 5 and row.paused_until == t0 + timedelta(minutes=8)
    for day in range(1, 400):  # a year of failures: capped at a day, no overflow
        await record_failure(shoal.shoal, host, "refused", now=t0 + timedelta(days=day))
    row = await state()
    assert (
        row.paused_until - (t0 + timedelta(days=399)) == pause_for(timedelta(days=399)) == timedelta(days=1)
    )


async def test_a_probe_brings_a_recovered_host_its_backlog(shoal: Instance) -> None:
    """A paused host that answers again gets everything waiting within a round: one delivery
    probes it, and its success makes the rest due at once (the rows' own backoff was hours)."""
    up = {"ok": False}
    received: list[str] = []

    async def inbox(request: web.Request) -> web.Response:
        if not up["ok"]:
            return web.Response(status=503)
        received.append(json.loads(await request.read())["id"])
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/{tail:.*}", inbox)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    host = f"127.0.0.1:{server.port}"
    try:
        async with shoal.shoal.db.write() as session:
            channel = await session.scalar(select(Actor).where(Actor.preferred_username == "admin_channel"))
            followers = []
            for n in range(6):
                actor = Actor(kind=ActorKind.PERSON, preferred_username=f"f{n}", host=host,
                              handle_key=f"f{n}@{host}", ap_id=f"http://{host}/users/f{n}",
                              inbox_url=f"http://{host}/users/f{n}/inbox")  # fmt: skip
                session.add(actor)
                followers.append(actor)
            await session.flush()
            for n in range(3):
                activity = {
                    "id": f"{channel.ap_id}/tests/{n}",
                    "type": "ShoalTestPing",
                    "actor": channel.ap_id,
                }
                await deliver(shoal.shoal, session, activity, signer=channel, recipients=followers)

        async def all_failed_once() -> bool:
            rows = await work_rows(shoal.shoal, "deliver")
            return len(rows) == 18 and all(row.attempts >= 1 and row.state == "pending" for row in rows)

        await wait_for(all_failed_once, what="every delivery failed once")
        # The host has been down for hours: paused, and its rows backed off far ahead.
        later = utcnow() + timedelta(hours=3)
        async with shoal.shoal.db.write() as session:
            await session.execute(
                update(RemoteHost).where(RemoteHost.host == host)
                .values(failures=9, failing_since=utcnow() - timedelta(hours=3), paused_until=later)
            )  # fmt: skip
            from instance.models import WorkItem

            await session.execute(
                update(WorkItem).where(WorkItem.kind == "deliver").values(next_attempt_at=later)
            )
        up["ok"] = True
        assert await probe_paused_hosts(shoal.shoal) == 1

        async def delivered() -> bool:
            return len(received) == 18

        await wait_for(delivered, timeout=30, what="the backlog delivered after one probe")
        async with shoal.shoal.db.read() as session:
            row = await session.get(RemoteHost, host)
            assert row.paused_until is None and row.failures == 0
    finally:
        await server.close()
