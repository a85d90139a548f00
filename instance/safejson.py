"""JSON from outside (request bodies, inboxes, remote answers): parsed without raising anything but
``ValueError``.

``json.loads`` recurses once per nesting level: a document nested a few thousand levels deep (a
few kilobytes of ``[``) raises ``RecursionError``, which handlers that expect ``ValueError`` do
not catch, and one nested a few hundred levels deep parses but breaks the recursive code that
walks it later (JSON-LD expansion, validation, serialisation). :func:`loads` refuses both with
a ``ValueError`` that says why.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64
"""Deepest nesting accepted; ActivityPub objects and API bodies stay within a dozen levels."""


class TooDeep(ValueError):
    """A JSON document nested deeper than allowed."""


def loads(raw: str | bytes | bytearray, *, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` for untrusted text: ``ValueError`` (``TooDeep`` for nesting) on anything
    that is not JSON nested at most ``max_depth`` levels deep."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise TooDeep(f"the JSON document is nested deeper than {max_depth} levels") from None
    if depth(value, max_depth) > max_depth:
        raise TooDeep(f"the JSON document is nested deeper than {max_depth} levels")
    return value


def depth(value: Any, stop: int) -> int:
    """How deeply ``value`` nests lists and objects, counted without recursion; the count stops
    once it passes ``stop``."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > stop:
            return deepest
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest
