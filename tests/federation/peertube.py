"""A PeerTube 6.3 as it was captured: its documents, its signed activities, its refusals.

``tests/federation/data/peertube-6.3/`` holds what a real PeerTube 6.3 server (test mode, on
loopback) and a Shoal instance exchanged while following each other, commenting, rating,
viewing, renaming and deleting videos both ways:

- ``inbound.json``: every activity PeerTube POSTed to Shoal, in order, with the inbox path,
  PeerTube's headers and the status Shoal answered;
- ``fetches.json``: every ActivityPub URL PeerTube fetched from Shoal, with its Accept header;
- ``documents.json``: the documents PeerTube served to Shoal (actors, WebFinger, its video
  and collections), by path;
- ``outbound.json``: what Shoal POSTed to PeerTube and what PeerTube answered;
- ``keys.json``: the private keys of that throwaway PeerTube's actors, to sign replays.
- ``run-seams.json``: a later run both ways (follows, videos, a rename, comments): the
  activities PeerTube sent, its Video document, and every activity Shoal sent (all taken).

Hosts and the Shoal video's UUID are placeholders (``{peertube}``, ``{shoal}``,
``{video_uuid}`` …). :class:`RecordedPeerTube` serves the documents on a loopback port,
signs the captured activities with PeerTube's keys (the same signed headers PeerTube uses)
and POSTs them to a Shoal instance, and records what Shoal sends back, answering as
PeerTube does: 409 to its own activities sent back to it, 400 to a document its validators
refuse (:mod:`federation.conformance`).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiohttp import web
from aiohttp.test_utils import TestServer

from federation import conformance
from tests.conftest import Instance
from tests.federation.conftest import follow_state, signed_post, wait_for

DATA = Path(__file__).resolve().parent / "data" / "peertube-6.3"


def load(name: str) -> Any:
    """One capture file, placeholders unfilled."""
    return json.loads((DATA / name).read_text())


def fill(value: Any, names: dict[str, str]) -> Any:
    """``value`` with every ``{placeholder}`` in its strings replaced."""
    if isinstance(value, str):
        for key, text in names.items():
            value = value.replace("{" + key + "}", text)
        return value
    if isinstance(value, list):
        return [fill(item, names) for item in value]
    if isinstance(value, dict):
        return {fill(k, names): fill(v, names) for k, v in value.items()}
    return value


class RecordedPeerTube:
    """The captured PeerTube, served on a loopback port; see the module docstring."""

    def __init__(self, shoal_url: str, video_uuid: str = "00000000-0000-4000-8000-000000000000") -> None:
        self.shoal_url = shoal_url.rstrip("/")
        self.video_uuid = video_uuid
        self.received: list[tuple[str, dict[str, Any], int]] = []
        self._server: TestServer | None = None
        self.url = ""

    @property
    def names(self) -> dict[str, str]:
        return {
            "peertube": self.url,
            "peertube_host": urlsplit(self.url).netloc,
            "shoal": self.shoal_url,
            "shoal_host": urlsplit(self.shoal_url).netloc,
            "video_uuid": self.video_uuid,
        }

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc

    async def start(self) -> RecordedPeerTube:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()
        self.url = str(self._server.make_url("")).rstrip("/")
        return self

    async def close(self) -> None:
        if self._server is not None:
            await self._server.close()

    # ------------------------------------------------------------ what it serves

    def documents(self) -> dict[str, Any]:
        """Path → document, filled; captured activities are served at their ids too (PeerTube
        serves ``…/activity``, ``…/follows/<id>`` and the like)."""
        docs = {path: entry["body"] for path, entry in fill(load("documents.json"), self.names).items()}
        for entry in self.inbound():
            body = entry["body"]
            for doc in (body, body.get("object")):
                ident = doc.get("id") if isinstance(doc, dict) else None
                if isinstance(ident, str) and ident.startswith(self.url):
                    docs.setdefault(urlsplit(ident).path, doc)
        return docs

    def _webfinger(self, resource: str) -> dict[str, Any] | None:
        name = resource.removeprefix("acct:").split("@")[0]
        for prefix in ("/accounts/", "/video-channels/"):
            if prefix + name in self.documents():
                href = self.url + prefix + name
                link = {"rel": "self", "type": "application/activity+json", "href": href}
                return {"subject": resource, "aliases": [href], "links": [link]}
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            body = await request.read()
            try:
                activity = json.loads(body)
            except ValueError:
                return web.Response(status=400)
            status = self._answer(activity)
            self.received.append((request.path, activity, status))
            return web.Response(status=status)
        if request.path == "/.well-known/webfinger":
            found = self._webfinger(parse_qs(request.query_string).get("resource", [""])[0])
            if found is None:
                return web.Response(status=404)
            return web.json_response(found, content_type="application/jrd+json")
        doc = self.documents().get(request.path)
        if doc is None:
            return web.Response(status=404)
        return web.Response(body=json.dumps(doc).encode(), content_type="application/activity+json")

    def _answer(self, activity: dict[str, Any]) -> int:
        actor = activity.get("actor")
        actor = actor.get("id") if isinstance(actor, dict) else actor
        if isinstance(actor, str) and urlsplit(actor).netloc == self.host:
            return 409  # "Receiving request in INBOX by ourselves!"
        if conformance.problems(activity):
            return 400  # "Incorrect activity"
        return 204

    # ------------------------------------------------------------ what it sends

    def inbound(self) -> list[dict[str, Any]]:
        """The captured activities, filled (``path``, ``body``, ``answered``)."""
        return fill(load("inbound.json"), self.names)

    def keys(self) -> dict[str, str]:
        return fill(load("keys.json"), self.names)

    async def send(self, index: int, *, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        """Sign and POST captured activity ``index`` to the inbox it went to, as PeerTube signs
        (keyId = the actor's URL; ``(request-target) host date digest``)."""
        entry = self.inbound()[index]
        activity = copy.deepcopy(body or entry["body"])
        actor = activity["actor"]
        return await signed_post(
            self.shoal_url + entry["path"], activity, key_id=actor, private_pem=self.keys()[actor]
        )

    def posted(self, kind: str | None = None) -> list[tuple[str, dict[str, Any], int]]:
        """What Shoal POSTed here (path, activity, our answer), optionally of one type."""
        return [item for item in self.received if kind is None or item[1].get("type") == kind]


async def accepted(shoal: Instance, follower: str, target: str) -> None:
    """Wait until ``shoal`` stores ``follower`` following ``target`` as accepted."""

    async def check() -> bool:
        return await follow_state(shoal.shoal, follower, target) == "accepted"

    await wait_for(check, what=f"{follower} following {target}")


async def posted(peertube: RecordedPeerTube, kind: str, count: int) -> list[tuple[str, dict[str, Any], int]]:
    """Wait until Shoal has POSTed ``count`` activities of type ``kind`` to ``peertube``."""

    async def check() -> list[tuple[str, dict[str, Any], int]] | None:
        found = peertube.posted(kind)
        return found if len(found) >= count else None

    return await wait_for(check, what=f"{count} {kind} sent to PeerTube")
