"""Routes: the job queue for admins, on PeerTube's ``/api/v1/jobs`` paths.

A job here is a work row: its state, attempts, next attempt and last error, plus the
counts per kind and state and the live workers (STYLE 18).
"""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import Field

from .. import jobs
from ..errors import BadRequest
from ..models import WorkItem
from ..web.context import shoal_of
from ..web.responses import iso, json_response
from ..web.validation import Query
from . import api
from .registry import QUERY


class JobListQuery(Query):
    """PeerTube's paging (``start``, ``count``, ``sort``) and its ``jobType`` filter."""

    start: int = Field(0, ge=0)
    count: int = Field(15, ge=1, le=100)
    sort: Literal["createdAt", "-createdAt"] = "-createdAt"
    job_type: str | None = Field(None, min_length=1, max_length=64)


def job_json(item: WorkItem) -> dict[str, Any]:
    """One work row in the admin's job list."""
    return {
        "id": item.id,
        "type": item.kind,
        "state": item.state,
        "subject": item.subject,
        "data": item.payload,
        "attempts": item.attempts,
        "maxAttempts": item.max_attempts,
        "nextAttemptAt": iso(item.next_attempt_at),
        "lockedBy": item.locked_by,
        "error": item.last_error,
        "createdAt": iso(item.created_at),
        "stateChangedAt": iso(item.state_changed_at),
    }


@api.route(
    "GET",
    "/api/v1/jobs/stats",
    summary="Job counts by kind and state, and live workers",
    auth="admin",
    tags=("jobs",),
)
async def get_job_stats(request: web.Request) -> web.Response:
    """Row counts per kind and state, totals per state, and the workers whose heartbeat is fresh."""
    return json_response(await jobs.queue_stats(shoal_of(request)))


@api.route(
    "GET",
    "/api/v1/jobs/{state}",
    summary="List jobs in a state",
    auth="admin",
    query=JobListQuery,
    tags=("jobs",),
)
async def list_jobs(request: web.Request) -> web.Response:
    """Jobs in ``state`` (pending, running, succeeded, failed or all), newest first by default."""
    state = request.match_info["state"]
    if state not in jobs.LIST_STATES:
        raise BadRequest(
            f"Unknown job state '{state}': use one of {', '.join(jobs.LIST_STATES)}.",
            code="invalid_job_state",
            field="state",
        )
    query = request[QUERY]
    assert isinstance(query, JobListQuery)
    total, items = await jobs.list_work(
        shoal_of(request),
        state,
        start=query.start,
        count=query.count,
        kind=query.job_type,
        newest_first=query.sort == "-createdAt",
    )
    return json_response({"total": total, "data": [job_json(item) for item in items]})


@api.route(
    "POST", r"/api/v1/jobs/{id:\d+}/retry", summary="Retry a failed job now", auth="admin", tags=("jobs",)
)
async def retry_job(request: web.Request) -> web.Response:
    """A failed job goes back to pending with a fresh budget of attempts, and the queue is rung."""
    item = await jobs.retry_work(shoal_of(request), int(request.match_info["id"]))
    return json_response(job_json(item))
