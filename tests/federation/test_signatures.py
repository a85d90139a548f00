"""HTTP signatures: a captured Mastodon request, our own round trip, and mutations that must be refused."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
from bovine.crypto import generate_rsa_public_private_key
from sqlalchemy import update

from federation.errors import SignatureError
from federation.signatures import identity_from_pem, key_id_of, sign_headers, verify_request
from instance.models import Actor
from tests.conftest import Instance, InstanceFactory
from tests.federation.conftest import actor_row, signed_post, wait_for, work_rows

MASTODON_INBOX = "/accounts/ronan/inbox"


def _retriever(pem: str, owner: str):
    async def retrieve(key_id: str, refresh: bool) -> Any:
        return identity_from_pem(pem, owner)

    return retrieve


async def test_mastodon_fixture_verifies(ap_fixture: Any) -> None:
    good = ap_fixture("http-signature.json")
    pem = ap_fixture("public-key.json")["publicKey"]
    actor = "http://localhost:3000/users/ronan2"
    recorded = parsedate_to_datetime(good["headers"]["date"])
    # The captured body was re-serialised in the fixture, so its Digest is checked only as a
    # signed header here; the signature math is what this test is about.
    owner = await verify_request(
        "POST", MASTODON_INBOX, good["headers"], None, _retriever(pem, actor), now=recorded
    )
    assert owner == actor
    with pytest.raises(SignatureError, match="off our clock"):
        await verify_request("POST", MASTODON_INBOX, good["headers"], None, _retriever(pem, actor))
    bad = ap_fixture("bad-http-signature.json")
    with pytest.raises(SignatureError, match="does not verify"):
        await verify_request(
            "POST", MASTODON_INBOX, bad["headers"], None, _retriever(pem, actor), now=recorded
        )
    with pytest.raises(SignatureError, match="does not verify"):
        await verify_request(
            "POST", "/accounts/other/inbox", good["headers"], None, _retriever(pem, actor), now=recorded
        )
    bad_pem = ap_fixture("bad-public-key.json")["publicKey"]
    with pytest.raises(SignatureError):
        await verify_request(
            "POST", MASTODON_INBOX, good["headers"], None, _retriever(bad_pem, actor), now=recorded
        )


async def test_round_trip_keeps_the_query_string() -> None:
    public, private = generate_rsa_public_private_key()
    url = "https://example.org/outbox?page=2"
    body = b'{"type":"Follow"}'
    headers = sign_headers(
        "POST", url, key_id="https://example.org/a#main-key", private_pem=private, body=body
    )
    assert headers["digest"].startswith("SHA-256=")
    retrieve = _retriever(public, "https://example.org/a")
    assert await verify_request("POST", "/outbox?page=2", headers, body, retrieve) == "https://example.org/a"
    with pytest.raises(SignatureError):
        await verify_request("POST", "/outbox?page=3", headers, body, retrieve)
    get_headers = sign_headers("GET", url, key_id="k", private_pem=private)
    assert (
        await verify_request("GET", "/outbox?page=2", get_headers, None, retrieve) == "https://example.org/a"
    )


def _follow(sender: Instance, target: Instance, actor: str = "alice") -> dict[str, Any]:
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{sender.url}/accounts/{actor}/follows/{secrets.token_hex(6)}",
        "type": "Follow",
        "actor": f"{sender.url}/accounts/{actor}",
        "object": f"{target.url}/video-channels/bob_channel",
    }


async def test_inbox_accepts_valid_and_refuses_mutations(make_instance: InstanceFactory) -> None:
    a = await make_instance("a")
    b = await make_instance("b")
    await a.create_user("bob")
    await b.create_user("alice")
    await b.create_user("carol")
    alice = await actor_row(b.shoal, f"{b.url}/accounts/alice")
    assert alice is not None and alice.private_key_pem
    key = key_id_of(alice.ap_id)
    inbox = a.url + "/inbox"

    def drop_digest(headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
        return {k: v for k, v in headers.items() if k.lower() != "digest"}, body

    def alter_body(headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
        return headers, body.replace(b"Follow", b"Folloz")

    _, wrong_key = generate_rsa_public_private_key()
    stale = datetime.now(UTC) - timedelta(hours=2)
    refused = [
        ("wrong key", dict(private_pem=wrong_key), None, "does not verify"),
        ("altered body", {}, alter_body, "Digest does not match"),
        ("stale date", dict(now=stale), None, "off our clock"),
        ("missing digest", {}, drop_digest, "Digest"),
    ]
    for label, options, tamper, reason in refused:
        kwargs = {"key_id": key, "private_pem": alice.private_key_pem, **options}
        status, body = await signed_post(inbox, _follow(b, a), tamper=tamper, **kwargs)
        assert status == 401, (label, body)
        assert body["code"] == "invalid_signature" and reason in body["detail"], (label, body)
    # The activity claims carol while alice signs it, and its id cannot be fetched from B.
    status, body = await signed_post(
        inbox, _follow(b, a, "carol"), key_id=key, private_pem=alice.private_key_pem
    )
    assert status == 401 and "not by the activity's actor" in body["detail"], body
    # Unsigned.
    async with a.client.session.post(inbox, data=json.dumps(_follow(b, a))) as response:
        assert response.status == 401
    assert await work_rows(a.shoal, "inbox") == []

    # A valid one is taken and applied: bob_channel accepts. Sent twice, it is stored once while
    # the first still waits, and again once that one was applied (ids repeat: a re-follow).
    follow = _follow(b, a)
    for _ in range(2):
        status, body = await signed_post(inbox, follow, key_id=key, private_pem=alice.private_key_pem)
        assert status == 202, body
    rows = await work_rows(a.shoal, "inbox")
    assert {row.subject for row in rows} == {follow["id"]} and len(rows) in (1, 2)
    await wait_for(lambda: _done(a, "inbox"), what="the inbox row to be applied")

    # Key rotation: B's alice gets a new key; A re-fetches it once when the cached one fails.
    public, private = generate_rsa_public_private_key()
    async with b.shoal.db.write() as session:
        await session.execute(
            update(Actor).where(Actor.id == alice.id).values(public_key_pem=public, private_key_pem=private)
        )
    status, body = await signed_post(inbox, _follow(b, a), key_id=key, private_pem=private)
    assert status == 202, body
    stored = await actor_row(a.shoal, alice.ap_id)
    assert stored is not None and stored.public_key_pem == public


async def test_inbox_refuses_oversized_and_malformed(instance: Instance) -> None:
    _, private = generate_rsa_public_private_key()
    status, body = await signed_post(
        instance.url + "/inbox", b"x" * (1024 * 1024 + 10), key_id="http://127.0.0.1:9/a", private_pem=private
    )
    assert status == 413, body
    status, body = await signed_post(
        instance.url + "/inbox", b"[1]", key_id="http://127.0.0.1:9/a", private_pem=private
    )
    assert status == 400 and body["code"] == "invalid_activity"
    # A deleted account's own Delete cannot be verified (its key is gone): answered, not stored.
    ghost = "http://127.0.0.1:9/users/ghost"
    delete = {"id": ghost + "#delete", "type": "Delete", "actor": ghost, "object": ghost}
    status, _ = await signed_post(
        instance.url + "/inbox", delete, key_id=ghost + "#main-key", private_pem=private
    )
    assert status == 202
    delete["object"] = ghost + "/statuses/1"
    status, _ = await signed_post(
        instance.url + "/inbox", delete, key_id=ghost + "#main-key", private_pem=private
    )
    assert status == 401
    assert await work_rows(instance.shoal, "inbox") == []


async def _done(instance: Instance, kind: str) -> bool:
    rows = await work_rows(instance.shoal, kind)
    return bool(rows) and all(row.state == "succeeded" for row in rows)
