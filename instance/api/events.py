"""Live processing state of a video, over WebSocket or Server-Sent Events.

The video row is the truth, so the stream watches the row: any process (web or worker,
embedded or scaled) that advances it is seen here without a message bus.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import WSMsgType, web
from sqlalchemy import select

from ..core import Shoal
from ..models import Video, VideoState
from ..models.video import VIDEO_STATES
from ..services.videos import get_video_for
from ..web.context import current_user, shoal_of
from . import api

POLL_SECONDS = 0.5
MAX_SECONDS = 6 * 3600
TERMINAL = VIDEO_STATES.final


def state_event(video: Any) -> dict[str, Any]:
    """One event: PeerTube's state pair plus Shoal's state name, what is happening, progress and
    failure reason."""
    state = VideoState(video.state)
    state_id, label = state.peertube
    return {
        "id": video.id,
        "uuid": video.uuid,
        "state": {"id": state_id, "label": label},
        "stateName": state.value,
        "activity": state.activity,
        "progress": video.progress,
        "failureCode": video.failure_code,
        "failureReason": video.failure_reason,
    }


async def watch(shoal: Shoal, video_id: int) -> AsyncIterator[dict[str, Any]]:
    """Yield the video's state each time it changes, ending after a terminal state."""
    last = None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + MAX_SECONDS
    while loop.time() < deadline:
        async with shoal.db.read() as session:
            row = (
                await session.execute(
                    select(
                        Video.id,
                        Video.uuid,
                        Video.state,
                        Video.progress,
                        Video.failure_code,
                        Video.failure_reason,
                    ).where(Video.id == video_id)
                )
            ).first()
        if row is None:
            yield {"id": video_id, "deleted": True}
            return
        event = state_event(row)
        if event != last:
            last = event
            yield event
        if row.state in TERMINAL:
            return
        await asyncio.sleep(POLL_SECONDS)


@api.route(
    "GET",
    "/api/v1/videos/{id}/events",
    summary="Live state and progress (WebSocket or SSE)",
    tags=("videos",),
)
async def video_events(request: web.Request) -> web.StreamResponse:
    """Upgrade to a WebSocket, or send ``text/event-stream``: one JSON event per change of state or
    progress, until the video is published or failed."""
    shoal = shoal_of(request)
    async with shoal.db.read() as session:
        video = await get_video_for(shoal, session, request.match_info["id"], current_user(request))
    events = watch(shoal, video.id)
    if request.headers.get("Upgrade", "").lower() == "websocket":
        ws = web.WebSocketResponse(heartbeat=20)
        await ws.prepare(request)

        async def drain() -> None:
            async for msg in ws:
                if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                    break

        reader = asyncio.create_task(drain())
        try:
            async for event in events:
                if ws.closed:
                    break
                await ws.send_str(json.dumps(event))
        finally:
            reader.cancel()
            await ws.close()
        return ws
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    async for event in events:
        await response.write(f"event: state\ndata: {json.dumps(event)}\n\n".encode())
    await response.write_eof()
    return response
