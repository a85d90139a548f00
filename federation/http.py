"""The one way out: signed GETs and POSTs through an SSRF guard, with timeouts and size limits.

Every remote request of the federation package goes through :func:`fetch_json` or
:func:`post_signed`. The guard resolves the host first and refuses loopback, private,
link-local, multicast and reserved addresses unless the host (or one of its addresses) is
in ``settings.federation_allow_hosts``; it runs again for every redirect hop. The client
itself connects only to addresses the same rules allow (``instance.netguard``), so a name
re-resolved between the check and the connection (DNS rebinding) gains nothing.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import aiohttp

from instance import safejson
from instance.netguard import UrlRefused, UrlUnresolvable, check_url

from .errors import FetchError, Gone, Invalid, Refused
from .instance_actor import application_actor
from .signatures import key_id_of, sign_headers

if TYPE_CHECKING:
    from instance.core import Shoal
    from instance.models import Actor

log = logging.getLogger("shoal.federation.http")

AP_ACCEPT = 'application/activity+json, application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
AP_CONTENT_TYPE = "application/activity+json"
MAX_DOCUMENT = 2 * 1024 * 1024
MAX_REDIRECTS = 5
FETCH_TIMEOUT = aiohttp.ClientTimeout(total=20, connect=5, sock_read=15)
POST_TIMEOUT = aiohttp.ClientTimeout(total=30, connect=5, sock_read=25)


async def guard(shoal: Shoal, url: str) -> None:
    """Refuse ``url`` (:class:`Refused`) unless it is http(s) to a public or allowlisted address
    (:func:`instance.netguard.check_url`, its errors as federation's).

    Nothing connects to the host before this returns.
    """
    try:
        await check_url(shoal.settings.allow_hosts, url)
    except UrlRefused as exc:
        raise Refused(url, str(exc)) from None
    except UrlUnresolvable as exc:
        raise FetchError(url, str(exc)) from None


def session_of(shoal: Shoal) -> aiohttp.ClientSession:
    """The process's shared HTTP client."""
    if shoal.http is None:
        raise FetchError("-", "this process has no HTTP client")
    return shoal.http


async def _read_limited(response: aiohttp.ClientResponse, url: str, limit: int) -> bytes:
    if response.content_length is not None and response.content_length > limit:
        raise Invalid(url, f"the document is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(65536):
        size += len(chunk)
        if size > limit:
            raise Invalid(url, f"the document is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def get_bytes(
    shoal: Shoal,
    url: str,
    *,
    accept: str,
    signer: Actor | None = None,
    sign: bool = True,
    limit: int = MAX_DOCUMENT,
) -> tuple[str, str, bytes]:
    """GET ``url`` through the guard, following up to 5 redirects (each re-checked).

    Returns ``(final url, content type, body)``. Raises :class:`Gone` on 404/410 and
    :class:`FetchError` on other failures.
    """
    if sign and signer is None:
        signer = await application_actor(shoal)
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        await guard(shoal, current)
        headers = {"Accept": accept}
        if signer is not None and signer.private_key_pem:
            headers.update(
                sign_headers(
                    "GET", current, key_id=key_id_of(signer.ap_id), private_pem=signer.private_key_pem
                )
            )
        try:
            async with session_of(shoal).get(
                current, headers=headers, allow_redirects=False, timeout=FETCH_TIMEOUT
            ) as response:
                if response.status in (301, 302, 303, 307, 308):
                    location = response.headers.get("Location")
                    if not location:
                        raise Invalid(current, f"redirect {response.status} without Location")
                    current = urljoin(current, location)
                    continue
                if response.status in (404, 410):
                    raise Gone(current, f"HTTP {response.status}")
                if response.status >= 400:
                    raise FetchError(current, f"HTTP {response.status}")
                body = await _read_limited(response, current, limit)
                return current, response.headers.get("Content-Type", ""), body
        except (aiohttp.ClientError, TimeoutError, UnicodeError) as exc:
            raise FetchError(current, f"{type(exc).__name__}: {exc}") from None
    raise FetchError(url, f"more than {MAX_REDIRECTS} redirects")


async def fetch_image(shoal: Shoal, url: str, limit: int) -> bytes:
    """A remote image's bytes through the guard (unsigned, size-limited), for the local cache."""
    _, _, body = await get_bytes(shoal, url, accept="image/*", sign=False, limit=limit)
    return body


async def fetch_json(shoal: Shoal, url: str, *, signer: Actor | None = None) -> dict[str, Any]:
    """GET an ActivityPub document, signed by ``signer`` or the instance's Application actor.

    Raises :class:`Gone` (404/410), :class:`Refused` (SSRF guard), :class:`Invalid` (not a
    JSON object, too large) or :class:`FetchError`.
    """
    final, _, body = await get_bytes(shoal, url, accept=AP_ACCEPT, signer=signer)
    return _json_object(final, body)


async def fetch_plain_json(shoal: Shoal, url: str, *, accept: str = "application/json") -> dict[str, Any]:
    """GET an unsigned JSON document (WebFinger, NodeInfo) through the same guard."""
    final, _, body = await get_bytes(shoal, url, accept=accept, sign=False, limit=256 * 1024)
    return _json_object(final, body)


def _json_object(url: str, body: bytes) -> dict[str, Any]:
    try:
        data = safejson.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Invalid(url, "the answer is not JSON (or is nested too deeply)") from None
    if not isinstance(data, dict):
        raise Invalid(url, "the answer is not a JSON object")
    return data


async def post_signed(
    shoal: Shoal,
    url: str,
    body: bytes,
    *,
    key_id: str,
    private_pem: str,
    signed: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], str]:
    """POST an activity, signed; returns ``(status, headers, first 500 chars of the answer)``.

    ``signed``: the signature headers when they were made already (a batch signed at once).
    Redirects are not followed (an inbox that moves answers an error we retry or give up on).
    Raises :class:`Refused` or :class:`FetchError` when no answer was obtained.
    """
    await guard(shoal, url)
    headers = {
        "Content-Type": AP_CONTENT_TYPE,
        "Accept": AP_ACCEPT,
        **(signed or sign_headers("POST", url, key_id=key_id, private_pem=private_pem, body=body)),
    }
    try:
        async with session_of(shoal).post(
            url, data=body, headers=headers, allow_redirects=False, timeout=POST_TIMEOUT
        ) as response:
            text = (await response.content.read(4096)).decode("utf-8", "replace")
            return response.status, dict(response.headers), text[:500]
    except (aiohttp.ClientError, TimeoutError, UnicodeError) as exc:
        raise FetchError(url, f"{type(exc).__name__}: {exc}") from None
