"""Routes: abuse reports (PeerTube's ``/abuses``): users report, moderators list."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import Field

from ..services import abuses as abuse_service
from ..services.abuses import ReportView
from ..web.context import require_user, shoal_of
from ..web.responses import iso, json_response
from ..web.validation import Body
from . import api, serializers
from .registry import BODY, QUERY
from .videos import DbInt, Pagination

STATES = {"pending": 1, "rejected": 2, "accepted": 3}


class AbuseVideo(Body):
    """The reported video: its id or UUID (``startAt``/``endAt`` are accepted, not stored)."""

    id: DbInt | str
    start_at: float | None = Field(None, ge=0)
    end_at: float | None = Field(None, ge=0)


class AbuseTarget(Body):
    """A reported comment or account, by id."""

    id: DbInt


class AbuseBody(Body):
    """One of ``video``, ``comment`` or ``account``, and why."""

    reason: str = Field(..., max_length=3000, description="why this is reported (2 to 3,000 characters)")
    predefined_reasons: list[str] | None = Field(None, max_length=10, description="accepted, not stored")
    video: AbuseVideo | None = None
    comment: AbuseTarget | None = None
    account: AbuseTarget | None = None


@api.route(
    "POST",
    "/api/v1/abuses",
    summary="Report a video, a comment or an account",
    auth="user",
    body=AbuseBody,
    tags=("abuses",),
)
async def report(request: web.Request) -> web.Response:
    """Store the report for the moderators (remote content: its instance is told too).
    Answers ``{"abuse": {"id"}}``."""
    body: AbuseBody = request[BODY]
    report_id = await abuse_service.report_abuse(
        shoal_of(request),
        require_user(request),
        body.reason,
        video=str(body.video.id) if body.video is not None else None,
        comment_id=body.comment.id if body.comment is not None else None,
        account_id=body.account.id if body.account is not None else None,
    )
    return json_response({"abuse": {"id": report_id}})


def _abuse(request: web.Request, view: ReportView) -> dict[str, Any]:
    shoal = shoal_of(request)
    report = view.report
    return {
        "id": report.id,
        "reason": report.reason,
        "state": {"id": STATES.get(report.state, 1), "label": report.state.capitalize()},
        "reporterAccount": serializers.account_summary(shoal, view.reporter) if view.reporter else None,
        "flaggedAccount": serializers.account_summary(shoal, view.account) if view.account else None,
        "video": {"id": view.video.id, "uuid": view.video.uuid, "name": view.video.name}
        if view.video
        else None,
        "comment": {"id": view.comment.id, "text": view.comment.text} if view.comment else None,
        "isRemote": report.ap_id is not None,
        "createdAt": iso(report.created_at),
    }


@api.route(
    "GET",
    "/api/v1/abuses",
    summary="List abuse reports",
    auth="moderator",
    query=Pagination,
    tags=("abuses",),
)
async def list_abuses(request: web.Request) -> web.Response:
    """Reports made here and received from other instances, newest first."""
    query = request[QUERY]
    total, views = await abuse_service.list_reports(shoal_of(request), query.start, query.count)
    return json_response({"total": total, "data": [_abuse(request, view) for view in views]})
