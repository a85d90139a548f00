"""Discovery and actor documents: WebFinger, host-meta, NodeInfo, actors, collections, the SSRF guard."""

from __future__ import annotations

import asyncio
import copy

import aiohttp
import pytest
from bovine.crypto.types import CryptographicIdentifier, CryptographicSecret
from pyld import jsonld

from federation.actors import parse_actor
from federation.context import offline_document_loader
from federation.errors import Invalid, Refused
from federation.http import fetch_json, guard
from instance.services.options import set_options
from tests.conftest import Instance, InstanceFactory
from tests.federation.conftest import get_json

AP = {"Accept": "application/activity+json"}
LD = {"Accept": 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'}


async def test_webfinger_and_host_meta(instance: Instance) -> None:
    await instance.create_user("alice")
    host = instance.settings.public_host
    for name, path in [("alice", "/accounts/alice"), ("alice_channel", "/video-channels/alice_channel"),
                       ("peertube", "/accounts/peertube")]:  # fmt: skip
        status, jrd = await get_json(instance, f"/.well-known/webfinger?resource=acct:{name}@{host}")
        assert status == 200, jrd
        assert jrd["subject"] == f"acct:{name}@{host}"
        self_link = next(link for link in jrd["links"] if link["rel"] == "self")
        assert self_link == {"rel": "self", "type": "application/activity+json", "href": instance.url + path}
    status, jrd = await get_json(instance, f"/.well-known/webfinger?resource={instance.url}/accounts/alice")
    assert status == 200 and jrd["subject"] == f"acct:alice@{host}"
    for resource, expected in [("acct:nobody@" + host, 404), ("acct:alice@elsewhere.example", 404),
                               ("mailto:x", 400), ("", 400)]:  # fmt: skip
        status, body = await get_json(instance, f"/.well-known/webfinger?resource={resource}")
        assert status == expected, (resource, body)
    async with instance.client.session.get(instance.url + "/.well-known/host-meta") as response:
        assert response.status == 200
        assert "/.well-known/webfinger?resource={uri}" in await response.text()


async def test_nodeinfo(instance: Instance) -> None:
    await instance.create_user("alice")
    status, links = await get_json(instance, "/.well-known/nodeinfo")
    assert status == 200
    rels = {link["rel"]: link["href"] for link in links["links"]}
    assert rels["https://www.w3.org/ns/activitystreams#Application"] == instance.url + "/accounts/peertube"
    for version in ("2.0", "2.1"):
        href = rels[f"http://nodeinfo.diaspora.software/ns/schema/{version}"]
        status, doc = await get_json(instance, href.removeprefix(instance.url))
        assert status == 200
        assert doc["version"] == version
        assert doc["software"]["name"] == "shoal" and doc["software"]["version"]
        assert doc["protocols"] == ["activitypub"]
        assert doc["openRegistrations"] is True
        assert doc["usage"]["users"]["total"] == 1  # alice
        assert doc["usage"]["localPosts"] == 0
    await set_options(instance.shoal, {"registration": "closed"})
    status, doc = await get_json(instance, "/nodeinfo/2.0.json")
    assert doc["openRegistrations"] is False


async def test_actor_documents(instance: Instance) -> None:
    await instance.create_user("alice")
    session = instance.client.session
    for path, kind in [("/accounts/alice", "Person"), ("/video-channels/alice_channel", "Group"),
                       ("/accounts/peertube", "Application")]:  # fmt: skip
        for accept in (AP, LD):
            async with session.get(instance.url + path, headers=accept) as response:
                assert response.status == 200
                assert response.content_type == "application/activity+json"
                doc = await response.json()
            actor = instance.url + path
            assert doc["type"] == kind and doc["id"] == actor
            assert "https://www.w3.org/ns/activitystreams" in doc["@context"]
            assert doc["inbox"] == actor + "/inbox" and doc["outbox"] == actor + "/outbox"
            assert doc["followers"] == actor + "/followers" and doc["following"] == actor + "/following"
            assert doc["endpoints"]["sharedInbox"] == instance.url + "/inbox"
            assert doc["publicKey"]["id"] == actor + "#main-key" and doc["publicKey"]["owner"] == actor
            assert doc["preferredUsername"] == path.rsplit("/", 1)[1]
        if kind == "Group":
            assert doc["attributedTo"] == [{"type": "Person", "id": instance.url + "/accounts/alice"}]
    # The published key verifies what the stored private key signs.
    from federation.instance_actor import application_actor

    app_actor = await application_actor(instance.shoal)
    signature = CryptographicSecret.from_pem("k", app_actor.private_key_pem).sign("hello")
    async with session.get(instance.url + "/accounts/peertube", headers=AP) as response:
        pem = (await response.json())["publicKey"]["publicKeyPem"]
    assert CryptographicIdentifier.from_pem(pem, "me").verify("hello", signature) == "me"
    # Browsers are sent to the web pages.
    for path, page in [
        ("/accounts/alice", "/a/alice"),
        ("/video-channels/alice_channel", "/c/alice_channel"),
    ]:
        async with session.get(
            instance.url + path, headers={"Accept": "text/html"}, allow_redirects=False
        ) as r:
            assert r.status == 302 and r.headers["Location"] == page
    for path in ("/accounts/nobody", "/video-channels/alice", "/accounts/alice_channel"):
        async with session.get(instance.url + path, headers=AP) as response:
            assert response.status == 404, path


async def test_collections_are_paged(instance: Instance) -> None:
    await instance.create_user("alice")
    for name in ("outbox", "followers", "following"):
        status, doc = await get_json(instance, f"/accounts/alice/{name}", headers=AP)
        assert status == 200
        assert doc["type"] == "OrderedCollection" and doc["totalItems"] >= 0
        status, page = await get_json(instance, f"/accounts/alice/{name}?page=1", headers=AP)
        assert (
            page["type"] == "OrderedCollectionPage"
            and page["partOf"] == instance.url + f"/accounts/alice/{name}"
        )
        assert isinstance(page["orderedItems"], list)
    status, body = await get_json(instance, "/accounts/alice/outbox?page=0", headers=AP)
    assert status == 400


async def test_ssrf_guard_refuses_without_connecting(make_instance: InstanceFactory) -> None:
    connections = 0

    async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        writer.close()

    server = await asyncio.start_server(count, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        closed = await make_instance(federation_allow_hosts="")
        for url in (f"http://127.0.0.1:{port}/actor", "http://10.0.0.1/actor", "http://[::1]:80/x",
                    "http://169.254.169.254/latest", "http://224.0.0.1/x", "file:///etc/passwd",
                    f"http://localhost:{port}/x"):  # fmt: skip
            with pytest.raises(Refused):
                await fetch_json(closed.shoal, url)
        # The client itself connects only where the rules allow, whatever the name resolves to
        # when it connects (a name that passed the check, then rebound to a private address).
        with pytest.raises(aiohttp.ClientConnectorDNSError):  # refused by the resolver
            async with closed.shoal.http.get(f"http://localhost:{port}/x"):
                pass
        assert connections == 0
        opened = await make_instance(federation_allow_hosts="127.0.0.1")
        await guard(opened.shoal, f"http://127.0.0.1:{port}/actor")  # allowlisted: passes
        with pytest.raises(Refused):
            await guard(opened.shoal, "http://10.0.0.1/actor")
        with pytest.raises(aiohttp.ClientError):  # localhost is 127.0.0.1: allowlisted, it connects
            async with opened.shoal.http.get(f"http://localhost:{port}/x"):
                pass
        assert connections >= 1
    finally:
        server.close()
        await server.wait_closed()


async def test_actor_documents_expand_and_round_trip(instance: Instance) -> None:
    await instance.create_user("alice")
    for path in ("/accounts/alice", "/video-channels/alice_channel", "/accounts/peertube"):
        status, doc = await get_json(instance, path, headers=AP)
        assert status == 200
        options = {"documentLoader": offline_document_loader()}
        expanded = await asyncio.to_thread(jsonld.expand, copy.deepcopy(doc), options)
        assert expanded[0]["@id"] == doc["id"]
        assert expanded[0]["http://www.w3.org/ns/ldp#inbox"][0]["@id"] == doc["inbox"]
        fields = parse_actor(doc["id"], doc)
        assert fields["ap_id"] == doc["id"] and fields["inbox_url"] == doc["inbox"]
        assert fields["shared_inbox_url"] == instance.url + "/inbox"
        assert fields["public_key_pem"] == doc["publicKey"]["publicKeyPem"]
        assert fields["preferred_username"] == path.rsplit("/", 1)[1]
        if doc["type"] == "Group":
            assert fields["owner_url"] == instance.url + "/accounts/alice"
    # A document whose id is on another host than the one it came from is refused.
    with pytest.raises(Invalid):
        parse_actor("https://elsewhere.example/actor", doc)
