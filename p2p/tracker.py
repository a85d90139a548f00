"""The built-in tracker: what it accepts, and HTTP announce and scrape (BEP 3, compact BEP 23).

Only infohashes this instance knows are accepted (:func:`p2p.service.is_known`); announces
are rate limited per client IP; a peer that stops announcing expires after
:data:`PEER_TTL`. Swarms live in this process's memory in the embedded mode and in Redis
in the scaled mode, so any web process answers any peer (:mod:`p2p.peers`). The WebTorrent
protocol over a WebSocket is :mod:`p2p.webtorrent`: a WebSocket peer's socket stays in the
process it connected to, and a message for a peer connected elsewhere goes through one Redis
pub/sub channel that every web process listens to (:meth:`Tracker.deliver`).

HTTP peers (``ip:port``) and WebSocket peers (WebRTC) are two swarms of the same infohash,
kept apart: neither kind can connect to the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
import random
import struct
from typing import Any
from urllib.parse import unquote_to_bytes

import libtorrent as lt
from aiohttp import WSCloseCode, web

from instance import pubsub
from instance.core import Shoal
from instance.services.files import on_access_change
from instance.web.context import SHOAL, client_ip

from .peers import MemorySwarms, RedisSwarms, Swarms, counts
from .service import forget_known, is_known

log = logging.getLogger("shoal.p2p.tracker")

INTERVAL = 120
MIN_INTERVAL = 30
PEER_TTL = 2 * INTERVAL + 30
DEFAULT_NUMWANT = 50
MAX_NUMWANT = 200
HTTP, WS = "http", "ws"
_STATE = "p2p.tracker"
SEEDER_PARAM = "seeder"


def seeder_token(shoal: Shoal) -> str:
    """What the instance's own seeder adds to its announce URLs (``?seeder=``): its announces
    do not count against the per-address limit, which would otherwise cap how many torrents it
    may seed from one address."""
    return hmac.new(shoal.secret, b"shoal seeder announces", hashlib.sha256).hexdigest()[:32]


def seeder_announce_url(shoal: Shoal, url: str) -> str:
    """``url`` (one of this instance's trackers) as the seeder announces to it."""
    return f"{url}{'&' if '?' in url else '?'}{SEEDER_PARAM}={seeder_token(shoal)}"


def is_seeder(shoal: Shoal, token: str | bytes | None) -> bool:
    if not token:
        return False
    given = token.encode("utf-8", "replace") if isinstance(token, str) else token
    return hmac.compare_digest(given, seeder_token(shoal).encode())


class TrackerError(Exception):
    """An announce or scrape the tracker refuses; the message is the BEP 3 ``failure reason``."""


# ---------------------------------------------------------------- the tracker


class Tracker:
    """One web process's tracker: the swarm store, its WebSocket peers and the relay channel."""

    def __init__(self, shoal: Shoal) -> None:
        self.shoal = shoal
        redis = shoal.redis
        self.swarms: Swarms = RedisSwarms(redis, shoal.settings.redis_prefix) if redis else MemorySwarms()
        self.sockets: dict[str, web.WebSocketResponse] = {}  # peer id → its socket, here
        self.connections: set[web.WebSocketResponse] = set()  # every open socket, announced or not
        self.owners: dict[str, str] = {}  # peer id → the address of its socket
        self.channel = f"{shoal.settings.redis_prefix}:trk:relay"
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.shoal.redis is not None:
            self._listener = await pubsub.follow(
                self.shoal.redis, self.channel, self._relay, name="tracker-relay"
            )

    async def close(self) -> None:
        """Stop relaying and close every WebSocket, announced or not, with "going away".

        Every one: a socket left open holds its client's close — and libtorrent's session, when
        the client is this process's own seeder, cannot be destroyed until its socket is
        closed, while the destructor holds the GIL this tracker would need to answer.
        """
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await asyncio.gather(
            *(ws.close(code=WSCloseCode.GOING_AWAY) for ws in list(self.connections)),
            return_exceptions=True,
        )

    async def _relay(self, raw: bytes) -> None:
        """A message another process relays to a WebSocket peer, if the peer is connected here."""
        data = json.loads(raw)
        ws = self.sockets.get(data["to"])
        if ws is not None and not ws.closed:
            await ws.send_json(data["message"])

    async def deliver(self, peer_id: str, message: dict[str, Any]) -> None:
        """Send ``message`` to a WebSocket peer, here or through Redis to the process holding it."""
        ws = self.sockets.get(peer_id)
        if ws is not None and not ws.closed:
            await ws.send_json(message)
        elif self.shoal.redis is not None:
            await self.shoal.redis.publish(self.channel, json.dumps({"to": peer_id, "message": message}))

    async def check(self, ip: str, info_hash: str, *, seeder: bool = False) -> None:
        """Refuse when P2P is off, the client announces too often (never the instance's own
        ``seeder``), or the infohash is unknown."""
        settings = self.shoal.settings
        if not settings.p2p_enabled:
            raise TrackerError("P2P is disabled on this instance")
        limit, window = settings.rate("tracker")
        if not seeder and await self.shoal.limiter.hit("tracker", ip, limit, window):
            raise TrackerError("too many announces, slow down")
        if not await is_known(self.shoal, info_hash):
            raise TrackerError("unknown infohash")

    async def scrape(self, info_hashes: list[str]) -> dict[str, dict[str, int]]:
        """complete / incomplete / downloaded of every known infohash asked about."""
        files: dict[str, dict[str, int]] = {}
        for info_hash in info_hashes:
            if not await is_known(self.shoal, info_hash):
                continue
            peers = await self.swarms.peers(HTTP, info_hash)
            peers.update(await self.swarms.peers(WS, info_hash))
            complete, incomplete = counts(peers)
            files[info_hash] = {
                "complete": complete,
                "incomplete": incomplete,
                "downloaded": await self.swarms.downloaded(info_hash),
            }
        return files


def tracker_of(request: web.Request) -> Tracker:
    shoal = request.app[SHOAL]
    tracker = shoal.extras.get(_STATE)
    if tracker is None:
        raise web.HTTPServiceUnavailable(text="the tracker is starting")
    return tracker


async def start_tracker(shoal: Shoal, app: web.Application) -> None:
    """Startup hook: this process's tracker (closed with the app)."""
    tracker = Tracker(shoal)
    await tracker.start()
    shoal.extras[_STATE] = tracker
    # A video closed here or in another process (announced like file access) stops being
    # tracked at once, not when the known infohashes expire.
    on_access_change(shoal, lambda _video_uuid: forget_known(shoal))

    async def close(_: web.Application) -> None:
        await tracker.close()

    app.on_shutdown.append(close)


async def sweep_peers(shoal: Shoal) -> None:
    """Chore: forget peers that stopped announcing (memory swarms; Redis expires on its own)."""
    tracker = shoal.extras.get(_STATE)
    if tracker is not None:
        await tracker.swarms.sweep()


# ---------------------------------------------------------------- HTTP announce and scrape


def _raw_query(request: web.Request) -> dict[str, list[bytes]]:
    """The query as bytes: ``info_hash`` and ``peer_id`` are 20 raw bytes, percent-encoded."""
    out: dict[str, list[bytes]] = {}
    for part in request.rel_url.raw_query_string.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        out.setdefault(unquote_to_bytes(name.replace("+", " ")).decode("latin-1"), []).append(
            unquote_to_bytes(value.replace("+", " "))
        )
    return out


def _bencoded(value: dict[str, Any]) -> web.Response:
    """A BEP 3 answer, bencoded by libtorrent (keys sorted). Its strings are bytes: libtorrent
    deprecates ``str`` values (keys may be ``str``)."""
    body = lt.bencode(value)
    return web.Response(body=body, content_type="text/plain", headers={"Cache-Control": "no-store"})


def _int(query: dict[str, list[bytes]], name: str, default: int | None = None) -> int:
    values = query.get(name)
    if not values:
        if default is None:
            raise TrackerError(f"missing {name}")
        return default
    try:
        return int(values[0])
    except ValueError:
        raise TrackerError(f"invalid {name}") from None


def _hash20(query: dict[str, list[bytes]], name: str) -> bytes:
    values = query.get(name)
    if not values or len(values[0]) != 20:
        raise TrackerError(f"invalid {name}")
    return values[0]


def _compact(peers: list[dict[str, Any]]) -> tuple[bytes, bytes]:
    four, six = b"", b""
    for peer in peers:
        address = ipaddress.ip_address(peer["ip"])
        packed = address.packed + struct.pack("!H", peer["port"])
        if address.version == 4:
            four += packed
        else:
            six += packed
    return four, six


async def http_announce(request: web.Request) -> web.Response:
    """BEP 3 announce; peers compact (BEP 23, with ``peers6`` of BEP 7) unless ``compact=0``."""
    tracker = tracker_of(request)
    try:
        query = _raw_query(request)
        info_hash = _hash20(query, "info_hash").hex()
        peer_id = _hash20(query, "peer_id").hex()
        port = _int(query, "port")
        if not 0 < port < 65536:
            raise TrackerError("invalid port")
        left = _int(query, "left", 1)
        event = query.get("event", [b""])[0].decode("latin-1")
        numwant = min(max(_int(query, "numwant", DEFAULT_NUMWANT), 0), MAX_NUMWANT)
        compact = query.get("compact", [b"1"])[0] != b"0"
        ip = client_ip(request)
        seeder = is_seeder(tracker.shoal, query.get(SEEDER_PARAM, [b""])[0])
        await tracker.check(ip, info_hash, seeder=seeder)
    except TrackerError as exc:
        return _bencoded({"failure reason": str(exc).encode()})
    swarms = tracker.swarms
    if event == "stopped":
        await swarms.remove(HTTP, info_hash, peer_id)
    else:
        await swarms.put(HTTP, info_hash, peer_id, {"ip": ip, "port": port, "left": left}, PEER_TTL)
        if event == "completed":
            await swarms.completed(info_hash)
    peers = await swarms.peers(HTTP, info_hash)
    complete, incomplete = counts(peers)
    others = [dict(r, peer_id=p) for p, r in peers.items() if p != peer_id]
    random.shuffle(others)
    others = others[:numwant]
    answer: dict[str, Any] = {
        "interval": INTERVAL,
        "min interval": MIN_INTERVAL,
        "complete": complete,
        "incomplete": incomplete,
    }
    if compact:
        answer["peers"], six = _compact(others)
        if six:
            answer["peers6"] = six
    else:
        answer["peers"] = [
            {"peer id": bytes.fromhex(r["peer_id"]), "ip": r["ip"].encode(), "port": r["port"]}
            for r in others
        ]
    return _bencoded(answer)


async def http_scrape(request: web.Request) -> web.Response:
    """BEP 48 scrape of the ``info_hash`` values asked about (unknown ones are left out)."""
    tracker = tracker_of(request)
    query = _raw_query(request)
    hashes = [value.hex() for value in query.get("info_hash", []) if len(value) == 20]
    try:
        settings = tracker.shoal.settings
        if not settings.p2p_enabled:
            raise TrackerError("P2P is disabled on this instance")
        limit, window = settings.rate("tracker")
        if await tracker.shoal.limiter.hit("tracker", client_ip(request), limit, window):
            raise TrackerError("too many requests, slow down")
    except TrackerError as exc:
        return _bencoded({"failure reason": str(exc).encode()})
    files = await tracker.scrape(hashes)
    return _bencoded({"files": {bytes.fromhex(h): v for h, v in files.items()}})
