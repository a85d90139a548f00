"""The WebTorrent tracker: its WebSocket protocol (JSON announces carrying WebRTC offers).

A peer announces over one WebSocket with the offers of its WebRTC connections; the tracker
hands each offer to another peer of the swarm and relays that peer's answer back, through
Redis when the other peer's socket is held by another web process (:class:`p2p.tracker.Tracker`).
An announce for an infohash this instance does not know closes the socket, as PeerTube's
tracker does. Ids (``info_hash``, ``peer_id``, ``offer_id``) travel as JSON strings of 20
code points 0–255.

What libtorrent's WebTorrent support (``websocket_tracker_connection.cpp``) needs besides the
browsers' protocol: one socket carries all its torrents, each with its own peer id; a message
without a valid ``info_hash`` is dropped as an "invalid tracker response" (so every refusal of
an announce names its swarm); only a message with an integer ``interval`` answers an announce;
offers and answers need a 20-byte ``offer_id`` and ``peer_id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any

from aiohttp import WSMsgType, web

from instance import safejson
from instance.web.context import client_ip

from .peers import counts
from .tracker import INTERVAL, PEER_TTL, SEEDER_PARAM, WS, Tracker, TrackerError, is_seeder, tracker_of

MAX_OFFERS = 10
WS_MAX_MESSAGE = 64 * 1024
CLOSE_TIMEOUT = 5.0  # how long a closing socket waits for the peer's close frame


def _binary(value: Any) -> str:
    """A 20-byte id sent as a JSON string of code points 0–255 → hex; TrackerError otherwise."""
    if not isinstance(value, str):
        raise TrackerError("invalid id")
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        raise TrackerError("invalid id") from None
    if len(raw) != 20:
        raise TrackerError("invalid id")
    return raw.hex()


def _text(hex_id: str) -> str:
    return bytes.fromhex(hex_id).decode("latin-1")


def _offer_id(value: Any) -> str | None:
    """An offer id as sent (20 code points 0–255), or None: libtorrent refuses any other."""
    with contextlib.suppress(TrackerError):
        _binary(value)
        return value
    return None


class SocketPeer:
    """One WebSocket connection and the swarms it announced to, each under its peer id.

    One socket may carry several peer ids: libtorrent keeps one WebSocket per tracker for all
    its torrents and gives each torrent its own peer id. A peer id belongs to the last socket
    that announced it from the address that first did, until that socket closes.
    """

    def __init__(self, tracker: Tracker, ws: web.WebSocketResponse, ip: str, seeder: bool = False) -> None:
        self.tracker, self.ws, self.ip = tracker, ws, ip
        self.seeder = seeder  # the instance's own seeder (``?seeder=``): no announce limit
        self.peer_ids: set[str] = set()
        self.swarms: dict[str, str] = {}  # info_hash → the peer id announced in that swarm

    async def handle(self, data: dict[str, Any]) -> bool:
        """Answer one message; False to close the socket (an unknown infohash, as PeerTube)."""
        action = data.get("action")
        if action == "announce":
            return await self._announce(data)
        if action == "scrape":
            raw = data.get("info_hash")
            raw = raw if isinstance(raw, list) else [raw] if raw else []
            hashes = []
            for value in raw:
                with contextlib.suppress(TrackerError):
                    hashes.append(_binary(value))
            files = await self.tracker.scrape(hashes)
            await self.ws.send_json({"action": "scrape", "files": {_text(h): v for h, v in files.items()}})
            return True
        await self.ws.send_json({"failure reason": "invalid action"})
        return True

    async def _refuse(self, reason: str, raw_hash: Any = None) -> None:
        # libtorrent drops (as "invalid tracker response") a message without a valid info_hash:
        # name the swarm whenever the request did.
        message: dict[str, Any] = {"action": "announce", "failure reason": reason}
        if raw_hash is not None:
            message["info_hash"] = raw_hash
        await self.ws.send_json(message)

    def _owns(self, peer_id: str) -> bool:
        return self.tracker.sockets.get(peer_id) is self.ws

    def _claim(self, peer_id: str) -> bool:
        """Whether ``peer_id`` is this socket's, now or from now on: a peer id held by another
        open socket is taken over only from the same address (libtorrent opens a new socket
        when a torrent is paused and resumed, before the server sees the old one close)."""
        if self._owns(peer_id):
            return True
        tracker = self.tracker
        other = tracker.sockets.get(peer_id)
        if other is not None and not other.closed and tracker.owners.get(peer_id) != self.ip:
            return False
        tracker.sockets[peer_id] = self.ws
        tracker.owners[peer_id] = self.ip
        self.peer_ids.add(peer_id)
        return True

    async def _announce(self, data: dict[str, Any]) -> bool:
        tracker = self.tracker
        raw_hash = data.get("info_hash")
        try:
            info_hash = _binary(raw_hash)
        except TrackerError as exc:
            await self._refuse(str(exc))
            return True
        try:
            peer_id = _binary(data.get("peer_id"))
        except TrackerError as exc:
            await self._refuse(str(exc), raw_hash)
            return True
        if "answer" in data:
            # An answer to an offer is relayed to the peer that made it; it is not an announce.
            offer_id = _offer_id(data.get("offer_id"))
            try:
                to_peer = _binary(data.get("to_peer_id"))
            except TrackerError:
                return True
            if not self._owns(peer_id) or offer_id is None or not isinstance(data["answer"], dict):
                return True
            await tracker.deliver(
                to_peer,
                {
                    "action": "announce",
                    "answer": data["answer"],
                    "offer_id": offer_id,
                    "peer_id": _text(peer_id),
                    "info_hash": raw_hash,
                },
            )
            return True
        try:
            await tracker.check(self.ip, info_hash, seeder=self.seeder)
        except TrackerError as exc:
            await self._refuse(str(exc), raw_hash)
            return str(exc) != "unknown infohash"
        if not self._claim(peer_id):
            await self._refuse("peer id in use", raw_hash)
            return True
        swarms = tracker.swarms
        left = data.get("left")
        left = left if isinstance(left, int) else 1
        if data.get("event") == "stopped":
            await swarms.remove(WS, info_hash, peer_id)
            self.swarms.pop(info_hash, None)
        else:
            former = self.swarms.get(info_hash)
            if former is not None and former != peer_id:
                await swarms.remove(WS, info_hash, former)
            await swarms.put(WS, info_hash, peer_id, {"left": left}, PEER_TTL)
            self.swarms[info_hash] = peer_id
            if data.get("event") == "completed":
                await swarms.completed(info_hash)
        peers = await swarms.peers(WS, info_hash)
        complete, incomplete = counts(peers)
        # libtorrent takes a message with an integer ``interval`` for the answer to its announce.
        await self.ws.send_json(
            {
                "action": "announce",
                "interval": INTERVAL,
                "info_hash": raw_hash,
                "complete": complete,
                "incomplete": incomplete,
            }
        )
        offers = data.get("offers")
        if isinstance(offers, list) and data.get("event") != "stopped":
            valid = [
                (offer_id, o["offer"])
                for o in offers[:MAX_OFFERS]
                if isinstance(o, dict)
                and isinstance(o.get("offer"), dict)
                and (offer_id := _offer_id(o.get("offer_id"))) is not None
            ]
            others = [p for p in peers if p != peer_id]
            random.shuffle(others)
            for target, (offer_id, offer) in zip(others, valid, strict=False):
                await tracker.deliver(
                    target,
                    {
                        "action": "announce",
                        "offer": offer,
                        "offer_id": offer_id,
                        "peer_id": _text(peer_id),
                        "info_hash": raw_hash,
                    },
                )
        return True

    async def closed(self) -> None:
        """The socket went away: leave every swarm it joined."""
        tracker = self.tracker
        owned = {peer_id for peer_id in self.peer_ids if self._owns(peer_id)}  # not taken over
        # Forget the socket before any await: the handler may be cancelled while it waits.
        for peer_id in owned:
            del tracker.sockets[peer_id]
            tracker.owners.pop(peer_id, None)
        for info_hash, peer_id in self.swarms.items():
            if peer_id in owned:
                await tracker.swarms.remove(WS, info_hash, peer_id)


async def ws_tracker(request: web.Request) -> web.WebSocketResponse:
    """The WebTorrent tracker protocol over one WebSocket (JSON text messages)."""
    tracker = tracker_of(request)
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=WS_MAX_MESSAGE, timeout=CLOSE_TIMEOUT)
    await ws.prepare(request)
    seeder = is_seeder(tracker.shoal, request.query.get(SEEDER_PARAM))
    peer = SocketPeer(tracker, ws, client_ip(request), seeder)
    tracker.connections.add(ws)
    try:
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            try:
                data = safejson.loads(message.data)
            except ValueError:
                continue
            if not isinstance(data, dict):
                continue
            if not await peer.handle(data):
                break
    finally:
        # Shielded: the handler may be cancelled (the client went away) while it leaves its swarms.
        tracker.connections.discard(ws)
        await asyncio.shield(peer.closed())
        await ws.close()
    return ws
