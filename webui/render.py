"""Turning user-supplied text into safe HTML: Markdown rendered, then sanitised with nh3.

Raw HTML in the Markdown source is not interpreted (``html=False``), and the result is
cleaned again with an allow-list, so neither a title, a description nor a remote Note can
bring a script, an event handler or a ``javascript:`` link into a page.
"""

from __future__ import annotations

import functools

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

ALLOWED_TAGS = {
    "p",
    "br",
    "strong",
    "em",
    "b",
    "i",
    "u",
    "s",
    "del",
    "a",
    "ul",
    "ol",
    "li",
    "blockquote",
    "code",
    "pre",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}}
URL_SCHEMES = {"http", "https", "mailto"}


@functools.cache
def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).disable("image")


def sanitize(html: str) -> Markup:
    """Keep only harmless tags, attributes and URL schemes; links open without a referrer handle."""
    cleaned = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow ugc",
    )
    return Markup(cleaned)  # nh3 output is safe by construction


def markdown(text: str | None) -> Markup:
    """Render user Markdown to sanitised HTML (empty for no text)."""
    if not text:
        return Markup("")
    return sanitize(_markdown().render(text))


def plain_excerpt(text: str | None, length: int = 200) -> str:
    """A one-line text excerpt (for meta tags); escaping is left to the template."""
    if not text:
        return ""
    flat = " ".join(text.split())
    return flat if len(flat) <= length else flat[: length - 1] + "…"


def duration(seconds: float | int | None) -> str:
    """``h:mm:ss`` or ``m:ss``."""
    total = int(round(seconds or 0))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
