"""Which addresses the instance's HTTP client may connect to (the SSRF guard's rules).

Remote hosts named by other servers (actors, inboxes, media, mirrors) must not lead the
instance into its own network: loopback, private, link-local, multicast and reserved
addresses are refused unless the host, or a network holding its address, is allowlisted
(``SHOAL_FEDERATION_ALLOW_HOSTS``). :func:`check_url` applies the rules before a request,
for a clear error; :class:`GuardedResolver` applies them again to the addresses
the client actually connects to, so a name that resolves to a public address for the
check and to a private one a moment later (DNS rebinding) still never reaches the latter.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def allowed(allow_hosts: Iterable[str], host: str, addresses: Iterable[Address]) -> bool:
    """True when ``host`` or one of its ``addresses`` is on the allowlist."""
    addresses = list(addresses)
    for entry in allow_hosts:
        if entry.lower() == host.lower():
            return True
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            continue
        if any(address in network for address in addresses):
            return True
    return False


def unmapped(address: Address) -> Address:
    """An IPv4-mapped IPv6 address as the IPv4 address it maps; any other as it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def public(address: Address) -> bool:
    """True for a globally routable unicast address (IPv4-mapped IPv6 judged as IPv4)."""
    address = unmapped(address)
    return address.is_global and not address.is_multicast


def parse_address(text: str) -> Address:
    """An address from a resolver's answer (an IPv6 zone such as ``%eth0`` dropped)."""
    return ipaddress.ip_address(text.split("%")[0])


class UrlRefused(ValueError):
    """The rules refuse a URL before anything connects to its host."""


class UrlUnresolvable(OSError):
    """A URL's host name does not resolve."""


async def check_url(allow_hosts: Iterable[str], url: str) -> None:
    """Refuse ``url`` unless it is http(s) to a public or allowlisted address.

    :class:`UrlRefused` for a URL the rules refuse, :class:`UrlUnresolvable` for a host that
    does not resolve. Nothing connects to the host before this returns.
    """
    allow_hosts = list(allow_hosts)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UrlRefused("only http and https URLs with a host are fetched")
    host = parts.hostname
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        if allowed(allow_hosts, host, []):
            return
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
            )
        except (socket.gaierror, UnicodeError) as exc:
            raise UrlUnresolvable(f"cannot resolve {host}: {exc}") from None
        addresses = [parse_address(info[4][0]) for info in infos]
    if allowed(allow_hosts, host, addresses):
        return
    if not addresses or not all(public(address) for address in addresses):
        raise UrlRefused(f"{host} resolves to a non-public address and is not allowlisted")


class GuardedResolver(AbstractResolver):
    """Resolves like aiohttp's default resolver, then keeps only addresses the rules allow.

    A host whose every address is refused fails to resolve (an ``OSError`` naming the
    reason, which aiohttp reports as a connection error).
    """

    def __init__(self, allow_hosts: Iterable[str]) -> None:
        self._allow = list(allow_hosts)
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if allowed(self._allow, host, []):
            return results
        kept = [
            r
            for r in results
            if public(address := parse_address(r["host"])) or allowed(self._allow, "", [address])
        ]
        if not kept:
            raise OSError(f"{host} resolves to non-public addresses only and is not allowlisted")
        return kept

    async def close(self) -> None:
        await self._inner.close()
