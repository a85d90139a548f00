"""Security headers on every response: a Content-Security-Policy and clickjacking protection.

Scripts and media come only from this instance or the configured storage/CDN origin
(``s3_public_url``, the S3 endpoint). Every page refuses to be framed except the embed
page, whose whole purpose is to be put in other sites' iframes.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from aiohttp import web

from instance.settings import Settings

EMBED_PREFIX = "/videos/embed/"


def origin_of(url: str | None) -> str | None:
    """``scheme://host[:port]`` of an absolute URL, else None."""
    return _origin(url)


def _origin(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def media_origins(settings: Settings) -> list[str]:
    """The storage/CDN origins media may come from, besides the instance itself."""
    origins = []
    for url in (settings.s3_public_url, settings.s3_endpoint_url):
        origin = _origin(url)
        if origin and origin not in origins:
            origins.append(origin)
    return origins


def content_security_policy(settings: Settings, *, embed: bool, remote: Iterable[str] = ()) -> str:
    """The CSP of our pages (``embed`` allows any site to frame the page).

    ``remote`` adds the origins a remote video plays from (its instance, storage or CDN, and its
    WebSocket tracker), and any https origin, to what the player may fetch — and to nothing
    else: scripts still come only from here.
    """
    extra = " ".join(media_origins(settings))
    sources = f"'self' {extra}".strip()
    remote = list(dict.fromkeys(remote))
    # A remote instance may redirect its files to storage or a CDN its Video object never names
    # (as Shoal itself does with S3): with a remote video, any https origin may serve media.
    extra_fetch = [o for o in remote if o not in sources.split()] + (["https:"] if remote else [])
    fetched = " ".join([sources, *extra_fetch])
    directives = [
        "default-src 'self'",
        f"script-src {sources}",
        "style-src 'self'",
        f"img-src 'self' data: blob: https: {extra}".strip(),
        f"media-src {fetched} blob:",
        f"connect-src {fetched}",
        "worker-src 'self' blob:",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-src 'self'",
        "frame-ancestors *" if embed else "frame-ancestors 'none'",
    ]
    return "; ".join(directives)


def install(app: web.Application, settings: Settings) -> None:
    """Add the headers to every response just before it is sent."""
    page_csp = content_security_policy(settings, embed=False)
    embed_csp = content_security_policy(settings, embed=True)

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        embed = request.path.startswith(EMBED_PREFIX)
        if not embed:
            headers.setdefault("X-Frame-Options", "DENY")
        if "Content-Security-Policy" not in headers:
            headers["Content-Security-Policy"] = embed_csp if embed else page_csp

    app.on_response_prepare.append(on_prepare)
