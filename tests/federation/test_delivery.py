"""Delivery: one durable row per inbox, shared inboxes deduplicated, retried until a stopped host is back."""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import select

from federation.actors import resolve_actor
from federation.delivery import activity_of, deliver, followers_of, prune_bodies, ring_pending
from federation.hosts import resume_host
from instance.jobs import add_work_many
from instance.models import Actor, ActorKind, DeliveryBody, RemoteHost, utcnow
from tests.conftest import Instance, InstanceFactory
from tests.federation.conftest import follow_state, wait_for, work_rows


async def _subscribe(viewer_instance: Instance, name: str, channel_instance: Instance, channel: str) -> None:
    client = await viewer_instance.user_client(name)
    uri = f"{channel}@{channel_instance.settings.public_host}"
    status, body = await client.post("/api/v1/users/me/subscriptions", json={"uri": uri})
    assert status == 204, body
    follower = f"{viewer_instance.url}/accounts/{name}"
    target = f"{channel_instance.url}/video-channels/{channel}"

    async def accepted() -> bool:
        return await follow_state(viewer_instance.shoal, follower, target) == "accepted"

    await wait_for(accepted, what=f"{name} to follow {uri}")


async def _local(instance: Instance, ap_id: str) -> Actor:
    async with instance.shoal.db.read() as session:
        actor = await session.scalar(select(Actor).where(Actor.ap_id == ap_id))
        assert actor is not None
        session.expunge(actor)
        return actor


def _note(channel: Actor) -> dict:
    return {
        "id": f"{channel.ap_id}/tests/{secrets.token_hex(6)}",
        "type": "ShoalTestPing",
        "actor": channel.ap_id,
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
    }


async def test_followers_share_one_inbox_row(make_instance: InstanceFactory) -> None:
    a = await make_instance("a")
    b = await make_instance("b")
    c = await make_instance("c")
    await a.create_user("alice")
    await _subscribe(b, "viewer1", a, "alice_channel")
    await _subscribe(b, "viewer2", a, "alice_channel")
    await _subscribe(c, "viewer3", a, "alice_channel")
    local = await a.user_client("local_fan")
    status, _ = await local.post("/api/v1/users/me/subscriptions", json={"uri": "alice_channel"})
    assert status == 204
    channel = await _local(a, f"{a.url}/video-channels/alice_channel")
    remote_b = await resolve_actor(a.shoal, f"{b.url}/accounts/viewer1")

    activity = _note(channel)
    async with a.shoal.db.write() as session:
        items = await deliver(
            a.shoal, session, activity, signer=channel,
            recipients=[followers_of(channel), remote_b, channel.followers_url, channel],
        )  # fmt: skip
    # b's two followers and the explicit b actor share b's inbox; the local follower gets nothing.
    assert sorted(item.subject for item in items) == sorted([f"{b.url}/inbox", f"{c.url}/inbox"])

    async def received(instance: Instance) -> bool:
        return any(row.subject == activity["id"] for row in await work_rows(instance.shoal, "inbox"))

    await wait_for(lambda: received(b), what="b to receive the activity")
    await wait_for(lambda: received(c), what="c to receive the activity")
    rows = await work_rows(a.shoal, "deliver")
    assert all(row.state == "succeeded" for row in rows if row.payload["activity_id"] == activity["id"])
    # One stored body for the fan-out, named by both rows; what was sent is the activity.
    assert len({item.payload["body"] for item in items}) == 1
    sent = await activity_of(a.shoal, items[0].payload)
    assert sent is not None and {k: sent[k] for k in activity} == activity
    async with a.shoal.db.read() as session:
        query = select(DeliveryBody).where(DeliveryBody.activity_id == activity["id"])
        bodies = (await session.scalars(query)).all()
    assert len(bodies) == 1


async def test_bodies_are_pruned_and_a_row_without_one_fails_with_the_reason(
    make_instance: InstanceFactory,
) -> None:
    """Bodies go once every retry of their rows could have happened (a week); a row still
    pending then ends failed with the reason, and the other rows of its batch are delivered."""
    a = await make_instance("a")
    b = await make_instance("b")
    await a.create_user("alice")
    await _subscribe(b, "viewer1", a, "alice_channel")
    channel = await _local(a, f"{a.url}/video-channels/alice_channel")
    activity = _note(channel)
    async with a.shoal.db.write() as session:
        [sent] = await deliver(a.shoal, session, activity, signer=channel, recipients=[followers_of(channel)])
    await wait_for(lambda: row_state(a, sent.id, lambda row: row.state == "succeeded"), what="delivery")
    assert await prune_bodies(a.shoal) == 0  # young bodies stay
    assert await prune_bodies(a.shoal, older_than=timedelta(0)) >= 1
    async with a.shoal.db.read() as session:
        assert await session.get(DeliveryBody, sent.payload["body"]) is None

    # A row that outlived its body (written by hand: the retention is a week; a body id no
    # process ever read, so no memory has it), beside a fresh one.
    gone = {**sent.payload, "body": sent.payload["body"] + 100_000}
    async with a.shoal.db.write() as session:
        [orphan] = await add_work_many(a.shoal, session, "deliver", [(sent.subject, gone)])
        followers = [followers_of(channel)]
        [fresh] = await deliver(a.shoal, session, _note(channel), signer=channel, recipients=followers)
    await ring_pending(a.shoal)
    await wait_for(lambda: row_state(a, fresh.id, lambda row: row.state == "succeeded"), what="delivery")
    await wait_for(lambda: row_state(a, orphan.id, lambda row: row.state == "failed"), what="the orphan")
    row = next(r for r in await work_rows(a.shoal, "deliver") if r.id == orphan.id)
    assert "body is gone" in (row.last_error or "") and row.attempts == 1


async def row_state(instance: Instance, row_id: int, check) -> bool:
    return any(check(row) for row in await work_rows(instance.shoal, "deliver") if row.id == row_id)


async def test_a_stopped_instance_receives_once_restarted(make_instance: InstanceFactory) -> None:
    a = await make_instance("a")
    b = await make_instance("b")
    await b.create_user("bob")
    await _subscribe(a, "fan", b, "bob_channel")
    channel = await _local(b, f"{b.url}/video-channels/bob_channel")
    a_host = a.settings.public_host
    keep = {
        "port": a.settings.listen_port,
        "data_dir": a.settings.data_dir,
        "database_url": a.settings.effective_database_url,
        "storage_url": a.settings.effective_storage_url,
        "redis_prefix": a.settings.redis_prefix,
        "secret_key": "test-secret-a",
    }
    if a.worker is not None:
        await a.worker.aclose()
        a.worker = None
    await a.server.close()

    activity = _note(channel)
    async with b.shoal.db.write() as session:
        await deliver(b.shoal, session, activity, signer=channel, recipients=[followers_of(channel)])

    async def failed_once() -> bool:
        rows = [
            r for r in await work_rows(b.shoal, "deliver") if r.payload["activity_id"] == activity["id"]
        ]
        return bool(rows) and rows[0].state == "pending" and rows[0].attempts >= 1 and rows[0].last_error

    await wait_for(failed_once, what="the delivery to a stopped instance to fail and wait")
    async with b.shoal.db.read() as session:
        health = await session.get(RemoteHost, a_host)
        assert health is not None and health.failures >= 1

    restarted = await make_instance("a-again", **keep)

    async def received() -> bool:
        return any(row.subject == activity["id"] for row in await work_rows(restarted.shoal, "inbox"))

    # The backoff would retry in about a minute; lifting the pause makes the row due now.
    await resume_host(b.shoal, a_host)
    await wait_for(received, what="the restarted instance to receive the delivery")
    rows = [r for r in await work_rows(b.shoal, "deliver") if r.payload["activity_id"] == activity["id"]]

    async def succeeded() -> bool:
        rows = [
            r for r in await work_rows(b.shoal, "deliver") if r.payload["activity_id"] == activity["id"]
        ]
        return rows[0].state == "succeeded"

    await wait_for(succeeded, what="the delivery row to succeed")
    assert len(rows) == 1


async def test_refused_and_rejected_deliveries_fail_at_once(make_instance: InstanceFactory) -> None:
    a = await make_instance("a")
    await a.create_user("alice")
    channel = await _local(a, f"{a.url}/video-channels/alice_channel")
    # Another name for the same server, so the inbox is not recognised as our own.
    elsewhere = a.url.replace("127.0.0.1", "localhost")
    async with a.shoal.db.write() as session:
        private_host = Actor(
            kind=ActorKind.PERSON, preferred_username="x", host="10.0.0.1", ap_id="http://10.0.0.1/users/x",
            inbox_url="http://10.0.0.1/users/x/inbox",
        )  # fmt: skip
        no_inbox = Actor(
            kind=ActorKind.PERSON, preferred_username="y", host=a.settings.public_host + ".",
            ap_id=f"{a.url}./users/y", inbox_url=f"{elsewhere}/no-such-inbox",
        )  # fmt: skip
        session.add_all([private_host, no_inbox])
        await session.flush()
        activity = _note(channel)
        items = await deliver(a.shoal, session, activity, signer=channel, recipients=[private_host, no_inbox])
    assert len(items) == 2

    async def finished() -> list:
        rows = [
            r for r in await work_rows(a.shoal, "deliver") if r.payload["activity_id"] == activity["id"]
        ]
        return rows if all(r.state == "failed" for r in rows) else []

    rows = {row.subject: row for row in await wait_for(finished, what="both deliveries to fail")}
    assert rows["http://10.0.0.1/users/x/inbox"].attempts == 1
    assert "not allowlisted" in rows["http://10.0.0.1/users/x/inbox"].last_error
    assert rows[f"{elsewhere}/no-such-inbox"].attempts == 1
    assert "answered 404" in rows[f"{elsewhere}/no-such-inbox"].last_error


def test_retry_schedule_spans_days() -> None:
    from instance.extensions import build_surface

    kind = build_surface().jobs.kind("deliver")
    ceilings = [min(60 * 2 ** (n - 1), 86400) for n in range(1, kind.max_attempts)]
    assert ceilings[0] == 60 and max(ceilings) == 86400
    # With the jitter each wait is between half its ceiling and all of it: 2.7 to 5.4 days.
    assert 2.5 * 86400 < sum(ceilings) / 2 and sum(ceilings) < 6 * 86400
    assert kind.backoff(1) <= 60 and kind.backoff(30) <= 86400


async def test_a_fan_out_is_sent_in_signed_batches_exactly_once(make_instance: InstanceFactory) -> None:
    """Many inboxes on two receiving hosts: every POST signed (checked by the receivers with the
    channel's public key, the batch signed in the signing process), each inbox served once; a
    host answering 503 gets its rows retried, not lost, and they arrive once it is resumed."""
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    from federation import delivery
    from federation.signatures import identity_from_pem, sign_posts, signing_process_ready, verify_request

    a = await make_instance("a")
    await a.create_user("alice")
    channel = await _local(a, f"{a.url}/video-channels/alice_channel")
    # The first large batch starts the signing process; this fan-out is signed there.
    await sign_posts(
        f"{channel.ap_id}#main-key", channel.private_key_pem, [("http://x/inbox", "SHA-256=x")] * 20
    )

    async def signing_ready() -> bool:
        return signing_process_ready()

    await wait_for(signing_ready, what="the signing process")
    received: dict[tuple[str, str], int] = {}
    down = {"flaky": True}
    errors: list[str] = []

    async def retrieve(key_id: str, refresh: bool) -> object:
        return identity_from_pem(channel.public_key_pem, channel.ap_id)

    def receiver(name: str) -> web.Application:
        async def inbox(request: web.Request) -> web.Response:
            body = await request.read()
            try:
                signer = await verify_request("POST", request.path_qs, request.headers, body, retrieve)
                assert signer == channel.ap_id
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                return web.Response(status=401)
            if name == "flaky" and down["flaky"]:
                return web.Response(status=503)
            key = (request.host, request.path)
            received[key] = received.get(key, 0) + 1
            return web.Response(status=202)

        app = web.Application()
        app.router.add_post("/{tail:.*}", inbox)
        return app

    steady, flaky = (
        TestServer(receiver("steady"), host="127.0.0.1"),
        TestServer(receiver("flaky"), host="127.0.0.1"),
    )
    await steady.start_server()
    await flaky.start_server()
    try:
        followers = []
        async with a.shoal.db.write() as session:
            for n in range(40):  # more than POOL_MIN per batch: signed in the signing process
                server = steady if n % 2 else flaky
                host = f"127.0.0.1:{server.port}"
                actor = Actor(
                    kind=ActorKind.PERSON, preferred_username=f"f{n}", host=host,
                    handle_key=f"f{n}@{host}", ap_id=f"http://{host}/users/f{n}",
                    inbox_url=f"http://{host}/users/f{n}/inbox",
                )  # fmt: skip
                session.add(actor)
                followers.append(actor)
            await session.flush()
            activity = _note(channel)
            items = await deliver(a.shoal, session, activity, signer=channel, recipients=followers)
        assert len(items) == 40

        async def steady_done() -> bool:
            return sum(1 for (host, _) in received if host.endswith(f":{steady.port}")) == 20

        await wait_for(steady_done, what="the steady host's 20 inboxes")

        async def flaky_retrying() -> list:
            rows = [
                r
                for r in await work_rows(a.shoal, "deliver")
                if r.subject.startswith(f"http://127.0.0.1:{flaky.port}/")
            ]
            return rows if all(r.state == "pending" and r.attempts == 1 for r in rows) else []

        pending = await wait_for(flaky_retrying, what="the flaky host's rows waiting for a retry")
        assert len(pending) == 20 and "answered 503" in pending[0].last_error
        down["flaky"] = False
        await resume_host(a.shoal, f"127.0.0.1:{flaky.port}")

        async def all_done() -> bool:
            rows = [
                r
                for r in await work_rows(a.shoal, "deliver")
                if r.payload["activity_id"] == activity["id"]
            ]
            return len(received) == 40 and all(r.state == "succeeded" for r in rows)

        await wait_for(all_done, what="every inbox served")
        assert set(received.values()) == {1} and errors == []
        assert len(await work_rows(a.shoal, delivery.BATCH_KIND)) >= 1
    finally:
        await steady.close()
        await flaky.close()


async def test_what_one_instance_saw_of_a_host_stays_its_own(make_instance: InstanceFactory) -> None:
    """Two instances in one process: a host failing for one is not troubled for the other, and
    the other's success does not make the first forget it (nor do they share probes or slots)."""
    from federation.hosts import may_probe, memory, record_failure, record_success

    a, b = await make_instance(worker=False), await make_instance(worker=False)
    await record_failure(a.shoal, "down.example", "connection refused")
    assert "down.example" in memory(a.shoal).troubled
    assert "down.example" not in memory(b.shoal).troubled
    await record_success(b.shoal, "down.example")
    assert "down.example" in memory(a.shoal).troubled
    now = utcnow()
    assert may_probe(a.shoal, "down.example", now) and not may_probe(a.shoal, "down.example", now)
    assert may_probe(b.shoal, "down.example", now)
    assert memory(a.shoal) is not memory(b.shoal) and memory(a.shoal).slots is not memory(b.shoal).slots
