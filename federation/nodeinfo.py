"""NodeInfo 2.0 and 2.1: what this server is, for crawlers and for other instances."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from instance import __version__
from instance.models import Comment, User, Video, VideoState, utcnow
from instance.services.options import get_options

if TYPE_CHECKING:
    from instance.core import Shoal

SCHEMAS = {
    "2.0": "http://nodeinfo.diaspora.software/ns/schema/2.0",
    "2.1": "http://nodeinfo.diaspora.software/ns/schema/2.1",
}
APPLICATION_REL = "https://www.w3.org/ns/activitystreams#Application"


async def well_known(shoal: Shoal) -> dict[str, Any]:
    """``/.well-known/nodeinfo``: the documents, and the Application actor as PeerTube lists it."""
    from .instance_actor import application_actor

    links = [{"rel": rel, "href": shoal.url(f"/nodeinfo/{version}.json")} for version, rel in SCHEMAS.items()]
    links.append({"rel": APPLICATION_REL, "href": (await application_actor(shoal)).ap_id})
    return {"links": links}


async def usage(shoal: Shoal) -> dict[str, Any]:
    """User, video and comment counts of this instance."""
    now = utcnow()
    async with shoal.db.read() as session:
        users = await session.scalar(select(func.count(User.id)))
        month = await session.scalar(
            select(func.count(User.id)).where(User.last_login_at >= now - timedelta(days=30))
        )
        half = await session.scalar(
            select(func.count(User.id)).where(User.last_login_at >= now - timedelta(days=182))
        )
        videos = await session.scalar(
            select(func.count(Video.id)).where(
                Video.remote_url.is_(None), Video.state == VideoState.PUBLISHED
            )
        )
        comments = await session.scalar(
            select(func.count(Comment.id))
            .join(Video, Video.id == Comment.video_id)
            .where(Video.remote_url.is_(None), Comment.deleted_at.is_(None))
        )
    return {
        "users": {"total": int(users or 0), "activeMonth": int(month or 0), "activeHalfyear": int(half or 0)},
        "localPosts": int(videos or 0),
        "localComments": int(comments or 0),
    }


async def nodeinfo(shoal: Shoal, version: str) -> dict[str, Any]:
    """The NodeInfo document of ``version`` (2.0 or 2.1)."""
    options = await get_options(shoal)
    software: dict[str, Any] = {"name": "shoal", "version": __version__}
    if version == "2.1":
        software["homepage"] = shoal.settings.public_url
    return {
        "version": version,
        "software": software,
        "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": []},
        "openRegistrations": options["registration"] != "closed",
        "usage": await usage(shoal),
        "metadata": {
            "nodeName": options["instance_name"],
            "nodeDescription": options["instance_description"],
            "taxonomy": {"postsName": "Videos"},
        },
    }
