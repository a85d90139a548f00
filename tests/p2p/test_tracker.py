"""The built-in tracker: HTTP announce and scrape, the WebTorrent WebSocket protocol, known infohashes."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import os
import struct
from typing import Any
from urllib.parse import quote_from_bytes

import aiohttp
import libtorrent as lt
import pytest
from aiohttp.test_utils import TestServer
from yarl import URL

from instance.app import create_app
from instance.models import Privacy, Rendition, Video
from p2p.swarm import swarm_id, swarm_ids
from p2p.tracker import seeder_token
from tests.conftest import SCALED, Instance, free_port
from tests.instance.test_videos import add_renditions, new_video

KNOWN = bytes.fromhex(f"{720:040x}")


async def published(instance: Instance, privacy: Privacy = Privacy.PUBLIC) -> Video:
    """A published video with two renditions whose infohashes are 720 and 360 (hex, padded)."""
    await instance.create_user("alice")
    video = await new_video(instance, "alice", "Tracker test", privacy=privacy)
    await add_renditions(instance, video)
    return video


async def announce(
    session: aiohttp.ClientSession, base: str, info_hash: bytes, peer_id: bytes, port: int, **extra: Any
) -> dict[bytes, Any]:
    query = f"info_hash={quote_from_bytes(info_hash)}&peer_id={quote_from_bytes(peer_id)}&port={port}"
    query += "".join(f"&{k}={v}" for k, v in extra.items())
    async with session.get(URL(f"{base}/tracker/announce?{query}", encoded=True)) as resp:
        assert resp.status == 200
        return lt.bdecode(await resp.read())


def compact_peers(blob: bytes) -> list[tuple[str, int]]:
    return [
        (str(ipaddress.IPv4Address(blob[i : i + 4])), struct.unpack("!H", blob[i + 4 : i + 6])[0])
        for i in range(0, len(blob), 6)
    ]


async def test_http_announce_returns_other_peers_compact_and_not(instance: Instance) -> None:
    await published(instance)
    a, b = os.urandom(20), os.urandom(20)
    async with aiohttp.ClientSession() as session:
        first = await announce(session, instance.url, KNOWN, a, 6881, left=0, compact=1)
        assert first[b"peers"] == b"" and first[b"interval"] > 0 and first[b"complete"] == 1
        second = await announce(session, instance.url, KNOWN, b, 6882, left=100, compact=1)
        assert compact_peers(second[b"peers"]) == [("127.0.0.1", 6881)]
        assert (second[b"complete"], second[b"incomplete"]) == (1, 1)
        plain = await announce(session, instance.url, KNOWN, b, 6882, left=100, compact=0)
        assert plain[b"peers"] == [{b"peer id": a, b"ip": b"127.0.0.1", b"port": 6881}]
        # A stopped peer leaves the swarm.
        await announce(session, instance.url, KNOWN, a, 6881, left=0, event="stopped")
        after = await announce(session, instance.url, KNOWN, b, 6882, left=100)
        assert after[b"peers"] == b""
        # Unknown infohashes are refused.
        refused = await announce(session, instance.url, os.urandom(20), a, 6881)
        assert refused[b"failure reason"] == b"unknown infohash"
        # Scrape: counts of known infohashes only.
        unknown = os.urandom(20)
        query = f"info_hash={quote_from_bytes(KNOWN)}&info_hash={quote_from_bytes(unknown)}"
        url = f"{instance.url}/tracker/scrape?{query}"
        async with session.get(URL(url, encoded=True)) as resp:
            scrape = lt.bdecode(await resp.read())
        assert scrape[b"files"] == {KNOWN: {b"complete": 0, b"incomplete": 1, b"downloaded": 0}}


async def test_http_answers_are_byte_exact(instance: Instance) -> None:
    """What clients parse, to the byte: BEP 3 dictionaries, keys sorted, strings as byte strings."""
    await published(instance)
    peer = os.urandom(20)

    async def raw(path: str, info_hash: bytes) -> bytes:
        query = f"info_hash={quote_from_bytes(info_hash)}&peer_id={quote_from_bytes(peer)}&port=6881"
        async with aiohttp.ClientSession() as session:
            async with session.get(URL(f"{instance.url}{path}?{query}", encoded=True)) as resp:
                assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
                return await resp.read()

    answer = await raw("/tracker/announce", KNOWN)
    assert answer == b"d8:completei0e10:incompletei1e8:intervali120e12:min intervali30e5:peers0:e"
    assert await raw("/tracker/announce", b"\x01" * 20) == b"d14:failure reason16:unknown infohashe"
    scrape = await raw("/tracker/scrape", KNOWN)
    assert scrape == b"d5:filesd20:" + KNOWN + b"d8:completei0e10:downloadedi0e10:incompletei1eeee"


async def test_announces_are_rate_limited_per_ip(make_instance: Any) -> None:
    instance = await make_instance(rate_limit_tracker="3/600")
    await published(instance)
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            ok = await announce(session, instance.url, KNOWN, os.urandom(20), 6881)
            assert b"failure reason" not in ok
        limited = await announce(session, instance.url, KNOWN, os.urandom(20), 6881)
        assert b"slow down" in limited[b"failure reason"]
        # The instance's own seeder announces with its token and is never limited; a wrong one is.
        token = seeder_token(instance.shoal)
        for _ in range(5):
            ok = await announce(session, instance.url, KNOWN, os.urandom(20), 6881, seeder=token)
            assert b"failure reason" not in ok
        limited = await announce(session, instance.url, KNOWN, os.urandom(20), 6881, seeder=token[::-1])
        assert b"slow down" in limited[b"failure reason"]
        # The same over the WebSocket tracker.
        socket = instance.url.replace("http://", "ws://") + "/tracker/socket"
        for query, refused in (("", True), (f"?seeder={token}", False), ("?seeder=%E2%82%AC", True)):
            async with session.ws_connect(socket + query) as ws:
                await ws.send_json({"action": "announce", "info_hash": binary(KNOWN), "left": 0,
                                    "peer_id": binary(os.urandom(20)), "numwant": 1})  # fmt: skip
                reply = await receive(ws, info_hash=binary(KNOWN))
                assert ("failure reason" in reply) is refused, reply


async def test_private_video_ids_are_refused(instance: Instance) -> None:
    video = await published(instance, Privacy.PRIVATE)
    async with instance.shoal.db.read() as session:
        row = await session.get(Video, video.id)
        renditions = list((await session.execute(Rendition.__table__.select())).all())
    ids = swarm_ids(instance.shoal, row, [Rendition(height=r.height) for r in renditions])
    assert len(ids) == 2
    async with aiohttp.ClientSession() as session:
        for info_hash in [KNOWN, *(bytes.fromhex(i) for i in ids)]:
            refused = await announce(session, instance.url, info_hash, os.urandom(20), 6881)
            assert refused[b"failure reason"] == b"unknown infohash"


def test_swarm_id_is_peertubes_formula() -> None:
    master = "https://peertube.example/static/streaming-playlists/hls/0c1f/3e5a-master.m3u8"
    # PeerTube: sha1(`${P2P_MEDIA_LOADER_PEER_VERSION}${playlistUrl}+V${i}`), peer version 2.
    for index in (0, 1, 2):
        expected = hashlib.sha1(f"2{master}+V{index}".encode()).hexdigest()
        assert swarm_id(master, index) == expected
    assert swarm_id(master, 0) != swarm_id(master, 1)


async def test_swarm_ids_follow_the_master_playlist_and_are_accepted(instance: Instance) -> None:
    video = await published(instance)
    status, body = await instance.client.get(f"/api/v1/videos/{video.uuid}")
    assert status == 200
    master = body["streamingPlaylists"][0]["playlistUrl"]
    async with instance.shoal.db.read() as session:
        row = await session.get(Video, video.id)
        rows = (await session.execute(Rendition.__table__.select())).all()
    ids = swarm_ids(instance.shoal, row, [Rendition(height=r.height) for r in rows])
    assert ids == [swarm_id(master, 0), swarm_id(master, 1)]
    async with aiohttp.ClientSession() as session:
        for info_hash in ids:
            ok = await announce(session, instance.url, bytes.fromhex(info_hash), os.urandom(20), 6881)
            assert b"failure reason" not in ok


def binary(raw: bytes) -> str:
    return raw.decode("latin-1")


async def receive(ws: aiohttp.ClientWebSocketResponse, **match: Any) -> dict[str, Any]:
    """The next message having every key/value of ``match`` (others are skipped)."""
    async with asyncio.timeout(20):
        while True:
            message = await ws.receive_json()
            if all(message.get(k) == v for k, v in match.items()):
                return message


async def ws_exchange(url_a: str, url_b: str) -> None:
    """Two WebTorrent peers (on the same or different web processes) trade an offer and an answer."""
    info_hash = binary(KNOWN)
    id_a, id_b = binary(os.urandom(20)), binary(os.urandom(20))

    def offer(peer: str, n: int) -> dict[str, Any]:
        return {"offer_id": binary(os.urandom(20)), "offer": {"type": "offer", "sdp": f"sdp of {peer} #{n}"}}

    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url_a) as ws_a, session.ws_connect(url_b) as ws_b:
            base = {
                "action": "announce",
                "info_hash": info_hash,
                "numwant": 5,
                "uploaded": 0,
                "downloaded": 0,
            }
            await ws_a.send_json(
                {**base, "peer_id": id_a, "left": 0, "event": "started", "offers": [offer("a", 1)]}
            )
            answer = await receive(ws_a, action="announce", interval=120)
            assert answer["info_hash"] == info_hash
            offers_b = [offer("b", 1), offer("b", 2)]
            await ws_b.send_json(
                {**base, "peer_id": id_b, "left": 10, "event": "started", "offers": offers_b}
            )
            await receive(ws_b, action="announce", interval=120)
            got = await receive(ws_a, peer_id=id_b)
            assert got["offer"] == offers_b[0]["offer"] or got["offer"] == offers_b[1]["offer"]
            assert got["info_hash"] == info_hash
            # A answers B's offer: B receives it, from A, with the same offer id.
            await ws_a.send_json(
                {
                    **base,
                    "peer_id": id_a,
                    "to_peer_id": id_b,
                    "offer_id": got["offer_id"],
                    "answer": {"type": "answer", "sdp": "answer of a"},
                }
            )
            got_answer = await receive(ws_b, peer_id=id_a)
            assert got_answer["answer"] == {"type": "answer", "sdp": "answer of a"}
            assert got_answer["offer_id"] == got["offer_id"]
            # And the other way round: A's next offers reach B, B's answer reaches A.
            offers_a = [offer("a", 2)]
            await ws_a.send_json({**base, "peer_id": id_a, "left": 0, "offers": offers_a})
            got_b = await receive(ws_b, peer_id=id_a, offer_id=offers_a[0]["offer_id"])
            assert got_b["offer"] == offers_a[0]["offer"]
            await ws_b.send_json(
                {
                    **base,
                    "peer_id": id_b,
                    "to_peer_id": id_a,
                    "offer_id": offers_a[0]["offer_id"],
                    "answer": {"type": "answer", "sdp": "answer of b"},
                }
            )
            got_a = await receive(ws_a, peer_id=id_b, offer_id=offers_a[0]["offer_id"])
            assert got_a["answer"]["sdp"] == "answer of b"
            # An unknown infohash is refused and the socket closed.
            await ws_b.send_json({**base, "peer_id": id_b, "info_hash": binary(os.urandom(20)), "left": 1})
            refused = await receive(ws_b, action="announce")
            assert refused["failure reason"] == "unknown infohash"
            closing = await ws_b.receive(timeout=10)
            assert closing.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.CLOSING,
            )


async def test_websocket_peers_receive_each_others_offers_and_answers(instance: Instance) -> None:
    await published(instance)
    url = instance.url.replace("http://", "ws://") + "/tracker/socket"
    await ws_exchange(url, url)


def libtorrent_takes(message: dict[str, Any]) -> bool:
    """Whether libtorrent 2.1 (parse_websocket_tracker_response) makes sense of a tracker message:
    a 20-byte info_hash always; offers and answers with 20-byte offer_id and peer_id; otherwise
    an integer interval (the reply to an announce) or a failure reason."""

    def twenty(value: Any) -> bool:
        return isinstance(value, str) and len(value.encode("latin-1", "replace")) == 20

    if not twenty(message.get("info_hash")):
        return False
    if "offer" in message or "answer" in message:
        return twenty(message.get("offer_id")) and twenty(message.get("peer_id"))
    return isinstance(message.get("interval"), int) or isinstance(message.get("failure reason"), str)


async def test_one_websocket_carries_several_torrents_as_libtorrent_does(make_instance: Any) -> None:
    """libtorrent announces every torrent over one WebSocket, each torrent with its own peer id;
    every message it gets back must name its swarm (else it is an "invalid tracker response").
    A torrent paused and resumed announces on a new socket before the old one is seen closing."""
    instance = await make_instance(trust_proxy=True)  # two client addresses on loopback
    await published(instance)
    url = instance.url.replace("http://", "ws://") + "/tracker/socket"
    first, second = binary(KNOWN), binary(bytes.fromhex(f"{360:040x}"))
    pid_1, pid_2, pid_b = (binary(os.urandom(20)) for _ in range(3))
    base = {"action": "announce", "numwant": 10, "uploaded": 0, "downloaded": 0}
    seeder_ip = {"X-Forwarded-For": "192.0.2.10"}
    tracker = instance.shoal.extras["p2p.tracker"]

    async def got(ws: aiohttp.ClientWebSocketResponse, **match: Any) -> dict[str, Any]:
        message = await receive(ws, **match)
        assert libtorrent_takes(message), message
        return message

    async with aiohttp.ClientSession() as session:
        async with (
            session.ws_connect(url, headers=seeder_ip) as seeder,
            session.ws_connect(url, headers={"X-Forwarded-For": "192.0.2.20"}) as peer,
        ):
            for info_hash, pid in ((first, pid_1), (second, pid_2)):
                started = {**base, "info_hash": info_hash, "peer_id": pid, "left": 0, "event": "started"}
                await seeder.send_json(started)
                reply = await got(seeder, info_hash=info_hash)
                assert reply["interval"] > 0 and reply["complete"] == 1 and "failure reason" not in reply
            # A peer's offer in the second swarm reaches the seeder's torrent of that swarm.
            offers = [
                {"offer_id": "short", "offer": {"type": "offer", "sdp": "refused: its id is not 20 bytes"}},
                {"offer_id": binary(os.urandom(20)), "offer": {"type": "offer", "sdp": "sdp of b"}},
            ]
            await peer.send_json({**base, "info_hash": second, "peer_id": pid_b, "left": 5, "offers": offers})
            reply = await got(peer, info_hash=second)
            assert reply["complete"] == 1 and reply["incomplete"] == 1
            offer = await got(seeder, peer_id=pid_b)
            assert offer["info_hash"] == second and offer["offer"]["sdp"] == "sdp of b"
            assert offer["offer_id"] == offers[1]["offer_id"]
            # The seeder answers under that torrent's peer id; the peer gets it.
            answer = {"type": "answer", "sdp": "answer of the seeder"}
            await seeder.send_json(
                {**base, "info_hash": second, "peer_id": pid_2, "to_peer_id": pid_b,
                 "offer_id": offer["offer_id"], "answer": answer}
            )  # fmt: skip
            answered = await got(peer, peer_id=pid_2)
            assert answered["answer"] == answer and answered["offer_id"] == offer["offer_id"]
            # Refusals name the swarm: another address cannot take a peer id in use; a bad peer id.
            await peer.send_json({**base, "info_hash": first, "peer_id": pid_1, "left": 5})
            refused = await got(peer, info_hash=first)
            assert refused["failure reason"] == "peer id in use"
            await peer.send_json({**base, "info_hash": first, "peer_id": "short", "left": 5})
            refused = await got(peer, info_hash=first)
            assert refused["failure reason"] == "invalid id"
            # A torrent stopped leaves its swarm only.
            stopped = {**base, "info_hash": first, "peer_id": pid_1, "left": 0, "event": "stopped"}
            await seeder.send_json(stopped)
            await got(seeder, info_hash=first)
            files = await tracker.scrape([KNOWN.hex(), f"{360:040x}"])
            assert files[KNOWN.hex()]["complete"] == 0 and files[f"{360:040x}"]["complete"] == 1
            # The seeder's torrent resumes on a new socket while the old one is still open: the
            # new socket takes its peer id over, answers and offers go there.
            async with session.ws_connect(url, headers=seeder_ip) as resumed:
                again = {**base, "info_hash": second, "peer_id": pid_2, "left": 0, "event": "started"}
                await resumed.send_json(again)
                await got(resumed, info_hash=second, interval=120)
                offer_id = binary(os.urandom(20))
                offers = [{"offer_id": offer_id, "offer": {"type": "offer", "sdp": "sdp of b #2"}}]
                announce_b = {**base, "info_hash": second, "peer_id": pid_b, "left": 5, "offers": offers}
                await peer.send_json(announce_b)
                offer = await got(resumed, peer_id=pid_b)
                assert offer["offer_id"] == offer_id
                await seeder.close()  # the old socket closes: the swarm keeps the seeder
                for _ in range(50):
                    if seeder.closed and tracker.sockets.get(pid_1) is None:
                        break
                    await asyncio.sleep(0.1)
                await asyncio.sleep(0.3)  # its swarms are left after its peer ids
                files = await tracker.scrape([f"{360:040x}"])
                assert files[f"{360:040x}"]["complete"] == 1
        # Every socket closed: the swarms are empty.
        for _ in range(50):
            files = await tracker.scrape([f"{360:040x}"])
            if not tracker.sockets and files[f"{360:040x}"]["complete"] == 0:
                break
            await asyncio.sleep(0.1)
        assert not tracker.sockets and not tracker.owners
        assert files[f"{360:040x}"]["complete"] == 0


@pytest.mark.scaled_only
async def test_any_web_process_answers_any_peer(instance: Instance) -> None:
    """Two web processes of one instance (same database, Redis and bucket): swarms are shared."""
    assert SCALED
    await published(instance)
    port = free_port()
    other = TestServer(create_app(instance.settings), host="127.0.0.1", port=port)
    await other.start_server()
    try:
        second = f"http://127.0.0.1:{port}"
        a = os.urandom(20)
        async with aiohttp.ClientSession() as session:
            await announce(session, instance.url, KNOWN, a, 7001, left=0)
            seen = await announce(session, second, KNOWN, os.urandom(20), 7002, left=5)
            assert compact_peers(seen[b"peers"]) == [("127.0.0.1", 7001)]
        await ws_exchange(
            instance.url.replace("http://", "ws://") + "/tracker/socket",
            second.replace("http://", "ws://") + "/tracker/socket",
        )
    finally:
        await other.close()


async def test_p2p_disabled_refuses_everything(make_instance: Any) -> None:
    instance = await make_instance(p2p_enabled=False)
    video = await published(instance)
    async with aiohttp.ClientSession() as session:
        refused = await announce(session, instance.url, KNOWN, os.urandom(20), 6881)
        assert b"disabled" in refused[b"failure reason"]
    status, body = await instance.client.get(f"/api/v1/videos/{video.uuid}")
    assert status == 200 and body["trackerUrls"] == []
    assert all(f["magnetUri"] is None for f in body["streamingPlaylists"][0]["files"])
    json.dumps(body)


async def test_a_closed_video_is_refused_at_once_by_every_web_process(instance: Instance) -> None:
    """Made private through one web process, a video's infohashes are refused by the trackers of
    every web process within moments (the access change is announced), not after the known set's
    minute."""
    video = await published(instance)
    token = await instance.client.login("alice", "password123")
    bases = [instance.url]
    other = None
    if SCALED:
        port = free_port()
        other = TestServer(create_app(instance.settings), host="127.0.0.1", port=port)
        await other.start_server()
        bases.append(f"http://127.0.0.1:{port}")
    try:
        async with aiohttp.ClientSession() as session:
            for base in bases:
                accepted = await announce(session, base, KNOWN, os.urandom(20), 7001, left=0)
                assert b"failure reason" not in accepted, (base, accepted)
            status, _ = await instance.client.as_user(token).put(
                f"/api/v1/videos/{video.uuid}", json={"privacy": int(Privacy.PRIVATE)}
            )
            assert status == 204
            for base in bases:
                for _ in range(30):
                    answer = await announce(session, base, KNOWN, os.urandom(20), 7002, left=0)
                    if answer.get(b"failure reason") == b"unknown infohash":
                        break
                    await asyncio.sleep(0.1)
                assert answer.get(b"failure reason") == b"unknown infohash", (base, answer)
    finally:
        if other is not None:
            await other.close()


async def test_closing_the_tracker_closes_every_socket_announced_or_not(instance: Instance) -> None:
    """At shutdown every WebSocket is closed with "going away", also one that never announced:
    a socket left open would hold its client (the in-process seeder's libtorrent among them)."""
    await published(instance)
    url = instance.url.replace("http://", "ws://") + "/tracker/socket"
    tracker = instance.shoal.extras["p2p.tracker"]
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url) as silent, session.ws_connect(url) as announced:
            peer_id = binary(os.urandom(20))
            started = {"action": "announce", "info_hash": binary(KNOWN), "peer_id": peer_id, "left": 0,
                       "event": "started", "numwant": 5, "uploaded": 0, "downloaded": 0}  # fmt: skip
            await announced.send_json(started)
            await receive(announced, action="announce", interval=120)
            assert len(tracker.connections) == 2 and len(tracker.sockets) == 1
            closing = asyncio.create_task(tracker.close())
            for ws in (silent, announced):
                async with asyncio.timeout(10):
                    message = await ws.receive()
                assert message.type == aiohttp.WSMsgType.CLOSE and message.data == 1001, message
            await asyncio.wait_for(closing, 10)
    assert not tracker.connections and not tracker.sockets
