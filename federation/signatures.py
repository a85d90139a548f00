"""HTTP Signatures (draft-cavage-http-signatures-12, rsa-sha256) on top of bovine's crypto.

Outgoing: :func:`sign_headers` signs ``(request-target) host date`` (+ ``digest`` with a
``Digest: SHA-256=`` header for bodies), as Mastodon and PeerTube expect.

Incoming: :func:`verify_request` checks one request and returns the key's owner (the actor
id). It differs from bovine's ``SignatureChecker`` on purpose: it keeps the query string
in ``(request-target)`` (bovine's verifier drops it), raises :class:`SignatureError` with a
reason instead of logging and returning None, takes the clock as a parameter (tests of old
captured requests), and asks the key retriever a second time with ``refresh=True`` when the
cached key does not verify (key rotation).
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import os
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import urlsplit

from bovine.crypto.digest import validate_digest
from bovine.crypto.helper import content_digest_sha256
from bovine.crypto.http_signature import HttpSignature
from bovine.crypto.signature import Signature
from bovine.crypto.types import CryptographicIdentifier, CryptographicSecret

from instance.children import die_with_parent

from .errors import SignatureError

# How far a request's Date may be from our clock. PeerTube allows 30 min, bovine 5 min.
MAX_CLOCK_SKEW = timedelta(minutes=15)

KeyRetriever = Callable[[str, bool], Awaitable[CryptographicIdentifier | None]]


@functools.lru_cache(maxsize=256)
def secret_for(key_id: str, private_pem: str) -> CryptographicSecret:
    """The signing secret of a key (parsing a PEM costs more than signing; cached)."""
    return CryptographicSecret.from_pem(key_id, private_pem)


def key_id_of(actor_id: str) -> str:
    """The key id we publish for an actor: ``<actor>#main-key`` (as Mastodon and PeerTube)."""
    return actor_id + "#main-key"


def http_date(now: datetime | None = None) -> str:
    """An RFC 9110 ``Date`` value."""
    return format_datetime(now or datetime.now(UTC), usegmt=True)


def sign_headers(
    method: str,
    url: str,
    *,
    key_id: str,
    private_pem: str,
    body: bytes | None = None,
    now: datetime | None = None,
    digest: str | None = None,
) -> dict[str, str]:
    """The ``Host``, ``Date``, (``Digest``) and ``Signature`` headers of one request.

    ``digest``: the body's ``Digest`` value when it was computed already (:func:`body_digest`).
    """
    parts = urlsplit(url)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    signature = (
        HttpSignature()
        .with_field("(request-target)", f"{method.lower()} {target}")
        .with_field("host", parts.netloc)
        .with_field("date", http_date(now))
    )
    if digest is not None or body is not None:
        signature.with_field("digest", digest or body_digest(body or b""))
    header = signature.sign_for_http_draft(secret_for(key_id, private_pem))
    return {**signature.headers, "signature": header}


def body_digest(body: bytes) -> str:
    """The ``Digest`` header value of a body (``SHA-256=<base64>``)."""
    return content_digest_sha256(body, prefix="SHA-256")


# A fan-out signs thousands of POSTs. RSA signing holds the GIL, so in the event loop it
# competes with every request the process serves: large batches are signed in a separate
# process instead (one per process, started on first use; until it answers, and on a
# one-core machine, they are signed in place).
POOL_MIN = 16
_pool: ProcessPoolExecutor | None = None
_pool_ready: Future[int] | None = None


def _sign_posts(key_id: str, private_pem: str, posts: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [sign_headers("POST", url, key_id=key_id, private_pem=private_pem, digest=d) for url, d in posts]


def _signing_pool() -> ProcessPoolExecutor | None:
    global _pool, _pool_ready
    if (os.cpu_count() or 1) < 2:
        return None
    if _pool is None:
        _pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=die_with_parent,
            initargs=(os.getpid(),),
        )
        _pool_ready = _pool.submit(os.getpid)
    return _pool if _pool_ready is not None and _pool_ready.done() else None


def start_signing_process() -> None:
    """Start the signing process now (a job consumer starting), so that the first fan-out
    does not sign in the event loop while it spawns (about a second)."""
    _signing_pool()


def signing_process_ready() -> bool:
    """True once large batches are signed in the signing process (started by the first one)."""
    return _pool is not None and _pool_ready is not None and _pool_ready.done()


async def sign_posts(key_id: str, private_pem: str, posts: list[tuple[str, str]]) -> list[dict[str, str]]:
    """Signature headers of many POSTs by one key, ``posts`` being ``(url, body digest)``;
    batches of :data:`POOL_MIN` or more are signed in the signing process."""
    global _pool
    pool = _signing_pool() if len(posts) >= POOL_MIN else None
    if pool is not None:
        try:
            return await asyncio.get_running_loop().run_in_executor(
                pool, _sign_posts, key_id, private_pem, posts
            )
        except BrokenProcessPool:
            _pool = None  # started again on next use; this batch is signed here
    return _sign_posts(key_id, private_pem, posts)


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _parse(headers: dict[str, str]) -> Signature:
    raw = headers.get("signature")
    if raw is None:
        auth = headers.get("authorization", "")
        if auth[:10].lower() == "signature ":
            raw = auth[10:]
    if not raw:
        raise SignatureError("the request has no Signature header")
    if "signature-input" in headers:
        raise SignatureError("RFC 9421 signatures are not accepted; sign with draft-cavage")
    # PeerTube strips a leading "Signature " scheme from the header for compatibility.
    if raw[:10].lower() == "signature ":
        raw = raw[10:]
    try:
        return Signature.from_signature_header(raw)
    except (ValueError, KeyError, IndexError) as exc:
        raise SignatureError(f"the Signature header cannot be parsed ({exc})") from None


async def verify_request(
    method: str,
    path_qs: str,
    headers: Mapping[str, str],
    body: bytes | None,
    key_retriever: KeyRetriever,
    *,
    now: datetime | None = None,
    max_skew: timedelta = MAX_CLOCK_SKEW,
) -> str:
    """Check a request's signature; return the owner of the key that signed it.

    ``path_qs`` is the request's path with its query string. ``key_retriever(key_id,
    refresh)`` returns the public key's identifier; it is called again with ``refresh=True``
    when the first key does not verify. Raises :class:`SignatureError` with the reason.
    """
    lower = _lower(headers)
    parsed = _parse(lower)
    fields = [field.lower() for field in parsed.fields if field]
    if "(request-target)" not in fields:
        raise SignatureError("the signature does not cover (request-target)")
    if "host" not in fields:
        raise SignatureError("the signature does not cover the Host header")
    if "date" not in fields and "(created)" not in fields:
        raise SignatureError("the signature covers neither Date nor (created)")
    if body is not None and method.upper() == "POST":
        if "digest" not in fields or "digest" not in lower:
            raise SignatureError("a POST must carry a signed Digest header")
        if not validate_digest({"digest": lower["digest"]}, body):
            raise SignatureError("the Digest does not match the body")
    current = now or datetime.now(UTC)
    _check_times(parsed, fields, current, max_skew)
    if "date" in fields:
        try:
            sent = parsedate_to_datetime(lower.get("date", ""))
        except (TypeError, ValueError):
            raise SignatureError("the Date header cannot be parsed") from None
        if sent.tzinfo is None:
            sent = sent.replace(tzinfo=UTC)
        if abs(current - sent) > max_skew:
            raise SignatureError(f"the Date is more than {int(max_skew.total_seconds())} s off our clock")
    message = HttpSignature()
    for field in fields:
        if field == "(request-target)":
            message.with_field(field, f"{method.lower()} {path_qs}")
        elif field == "(created)":
            message.with_field(field, str(parsed.created))
        elif field == "(expires)":
            message.with_field(field, str(parsed.expires))
        elif field in lower:
            message.with_field(field, lower[field])
        else:
            raise SignatureError(f"the signed header {field!r} is missing")
    for refresh in (False, True):
        identity = await key_retriever(parsed.key_id, refresh)
        if identity is None:
            raise SignatureError(f"the key {parsed.key_id} cannot be found")
        try:
            owner = message.verify_with_identity(identity, parsed.signature)
        except ValueError:
            owner = None
        if owner:
            return owner
    raise SignatureError(f"the signature does not verify with the key {parsed.key_id}")


def _check_times(parsed: Signature, fields: list[str], current: datetime, max_skew: timedelta) -> None:
    # draft-cavage-http-signatures-12 §2.1.4-5: (created) and (expires) are Unix times. A
    # signature over (created) instead of Date is held to the same clock rule, and one past
    # its expiry is refused whatever it covers.
    skew = max_skew.total_seconds()
    now = current.timestamp()
    if "(created)" in fields:
        if parsed.created is None:
            raise SignatureError("the signature covers (created) but has no created time")
        if abs(now - parsed.created) > skew:
            raise SignatureError(f"the created time is more than {int(skew)} s off our clock")
    if "(expires)" in fields and parsed.expires is None:
        raise SignatureError("the signature covers (expires) but has no expiry time")
    if parsed.expires is not None and now > parsed.expires:
        raise SignatureError("the signature has expired")


def identity_from_pem(public_pem: str, owner: str) -> CryptographicIdentifier:
    """The verifying identity of an actor's public key."""
    identity = CryptographicIdentifier.from_pem(public_pem, owner)
    if identity is None:
        raise SignatureError(f"the public key of {owner} cannot be loaded")
    return identity
