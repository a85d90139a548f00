"""JSON answers, with dates as PeerTube writes them."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from aiohttp import web


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def iso(value: datetime | None) -> str | None:
    """ISO 8601 with milliseconds and ``Z``, as PeerTube writes dates."""
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response (dates as PeerTube writes them)."""
    return web.Response(
        body=json.dumps(data, default=_json_default, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def no_content() -> web.Response:
    return web.Response(status=204)
