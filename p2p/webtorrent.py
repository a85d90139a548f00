"""The WebTorrent tracker: its WebSocket protocol (JSON announces carrying WebRTC offers).

A peer announces over one WebSocket with the offers of its WebRTC connections; the tracker
hands each offer to another peer of the swarm and relays that peer's answer back, through
Redis when the other peer's socket is held by another web process (:class:`p2p.tracker.Tracker`).
An announce for an infohash this instance does not know closes the socket, as PeerTube's
tracker does. Ids (``info_hash``, ``peer_id``) travel as JSON strings of code points 0–255.
"""

from __future__ import annotations

import contextlib
import random
from typing import Any

from aiohttp import WSMsgType, web

from instance import safejson
from instance.web.context import client_ip

from .peers import counts
from .tracker import INTERVAL, PEER_TTL, WS, Tracker, TrackerError, tracker_of

MAX_OFFERS = 10
WS_MAX_MESSAGE = 64 * 1024


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


class SocketPeer:
    """One WebSocket connection: its peer id (from its first announce) and its swarms."""

    def __init__(self, tracker: Tracker, ws: web.WebSocketResponse, ip: str) -> None:
        self.tracker, self.ws, self.ip = tracker, ws, ip
        self.peer_id: str | None = None
        self.swarms: set[str] = set()

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

    async def _announce(self, data: dict[str, Any]) -> bool:
        tracker = self.tracker
        raw_hash = data.get("info_hash")
        try:
            info_hash = _binary(raw_hash)
            peer_id = _binary(data.get("peer_id"))
        except TrackerError as exc:
            await self.ws.send_json({"action": "announce", "failure reason": str(exc)})
            return True
        if self.peer_id is None:
            self.peer_id = peer_id
            tracker.sockets[peer_id] = self.ws
        elif peer_id != self.peer_id:
            await self.ws.send_json({"action": "announce", "failure reason": "one peer id per socket"})
            return True
        if "answer" in data:
            # An answer to an offer is relayed to the peer that made it; it is not an announce.
            try:
                to_peer = _binary(data.get("to_peer_id"))
            except TrackerError:
                return True
            await tracker.deliver(
                to_peer,
                {
                    "action": "announce",
                    "answer": data["answer"],
                    "offer_id": data.get("offer_id"),
                    "peer_id": _text(peer_id),
                    "info_hash": raw_hash,
                },
            )
            return True
        try:
            await tracker.check(self.ip, info_hash)
        except TrackerError as exc:
            await self.ws.send_json({"action": "announce", "failure reason": str(exc), "info_hash": raw_hash})
            return str(exc) != "unknown infohash"
        swarms = tracker.swarms
        left = data.get("left")
        left = left if isinstance(left, int) else 1
        if data.get("event") == "stopped":
            await swarms.remove(WS, info_hash, peer_id)
            self.swarms.discard(info_hash)
        else:
            await swarms.put(WS, info_hash, peer_id, {"left": left}, PEER_TTL)
            self.swarms.add(info_hash)
            if data.get("event") == "completed":
                await swarms.completed(info_hash)
        peers = await swarms.peers(WS, info_hash)
        complete, incomplete = counts(peers)
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
            others = [p for p in peers if p != peer_id]
            random.shuffle(others)
            for target, offer in zip(others, offers[:MAX_OFFERS], strict=False):
                if not isinstance(offer, dict):
                    continue
                await tracker.deliver(
                    target,
                    {
                        "action": "announce",
                        "offer": offer.get("offer"),
                        "offer_id": offer.get("offer_id"),
                        "peer_id": _text(peer_id),
                        "info_hash": raw_hash,
                    },
                )
        return True

    async def closed(self) -> None:
        """The socket went away: leave every swarm it joined."""
        if self.peer_id is None:
            return
        if self.tracker.sockets.get(self.peer_id) is self.ws:
            del self.tracker.sockets[self.peer_id]
        for info_hash in self.swarms:
            await self.tracker.swarms.remove(WS, info_hash, self.peer_id)


async def ws_tracker(request: web.Request) -> web.WebSocketResponse:
    """The WebTorrent tracker protocol over one WebSocket (JSON text messages)."""
    tracker = tracker_of(request)
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=WS_MAX_MESSAGE)
    await ws.prepare(request)
    peer = SocketPeer(tracker, ws, client_ip(request))
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
        await peer.closed()
        await ws.close()
    return ws
