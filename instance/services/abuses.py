"""Abuse reports: a user reports a video, a comment or an account to the moderators.

A report is one :class:`AbuseReport` row (``pending`` until a moderator acts). Reports about
remote content concern the remote instance's moderators too: the ``abuse_reported`` event
(``report_id``; federation sends a ``Flag``) fires after the row is committed. Reports
received from other instances arrive as the same rows, with the remote reporter and the
``Flag``'s id in ``ap_id``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from ..core import Shoal
from ..errors import BadRequest, NotFound
from ..models import AbuseReport, Actor, ActorKind, Comment, User, Video
from .video_fields import storable
from .videos import get_video_for

log = logging.getLogger("shoal.abuses")

REASON_MAX = 3000


def check_reason(reason: Any) -> str:
    """2 to 3,000 characters of storable text, as PeerTube asks of a report's reason."""
    if not isinstance(reason, str) or not storable(reason) or len(reason.strip()) < 2:
        raise BadRequest("'reason' must have 2 to 3000 characters.", code="invalid_field", field="reason")
    if len(reason) > REASON_MAX:
        raise BadRequest("'reason' must have 2 to 3000 characters.", code="invalid_field", field="reason")
    return reason


async def report_abuse(
    shoal: Shoal,
    user: User,
    reason: str,
    *,
    video: str | None = None,
    comment_id: int | None = None,
    account_id: int | None = None,
) -> int:
    """``POST /abuses``: store a report about exactly one of a video, a comment or an account.

    The target must be one the reporter can see (404 otherwise). Returns the report's id.
    """
    reason = check_reason(reason)
    if sum(value is not None for value in (video, comment_id, account_id)) != 1:
        raise BadRequest(
            "Report exactly one of 'video', 'comment' or 'account'.", code="invalid_field", field="video"
        )
    async with shoal.db.write() as session:
        report = AbuseReport(reporter_id=user.account_id, reason=reason)
        if video is not None:
            report.video_id = (await get_video_for(shoal, session, video, user)).id
        elif comment_id is not None:
            comment = await session.get(Comment, comment_id) if 0 < comment_id < 2**31 else None
            if comment is None or comment.deleted_at is not None:
                raise NotFound("No such comment.", code="comment_not_found")
            # visible to the reporter (by UUID: a comment on an unlisted video may be reported)
            video_uuid = await session.scalar(select(Video.uuid).where(Video.id == comment.video_id))
            await get_video_for(shoal, session, str(video_uuid), user)
            report.comment_id, report.video_id = comment.id, comment.video_id
        else:
            assert account_id is not None
            target = await session.get(Actor, account_id) if 0 < account_id < 2**31 else None
            if target is None or target.kind not in (ActorKind.PERSON, ActorKind.GROUP):
                raise NotFound("No such account.", code="account_not_found")
            report.account_id = target.id
        session.add(report)
        await session.flush()
        report_id = report.id
    await shoal.ext.fire(shoal, "abuse_reported", report_id)
    return report_id


@dataclass
class ReportView:
    """A report with what it is about, loaded for the moderators' list."""

    report: AbuseReport
    reporter: Actor | None
    video: Video | None
    comment: Comment | None
    account: Actor | None


async def list_reports(shoal: Shoal, start: int, count: int) -> tuple[int, list[ReportView]]:
    """Reports, newest first (moderators only: the route checks the role)."""
    async with shoal.db.read() as session:
        total = await session.scalar(select(func.count(AbuseReport.id))) or 0
        reports = list(
            await session.scalars(
                select(AbuseReport).order_by(AbuseReport.id.desc()).offset(start).limit(count)
            )
        )
        views = []
        for report in reports:
            video = comment = None
            if report.video_id is not None:
                video = await session.scalar(
                    select(Video).options(joinedload(Video.channel)).where(Video.id == report.video_id)
                )
            if report.comment_id is not None:
                comment = await session.get(Comment, report.comment_id)
            views.append(
                ReportView(
                    report,
                    await session.get(Actor, report.reporter_id) if report.reporter_id else None,
                    video,
                    comment,
                    await session.get(Actor, report.account_id) if report.account_id else None,
                )
            )
        session.expunge_all()
    return total, views
