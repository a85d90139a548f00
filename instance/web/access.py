"""Who may fetch a local video's images and torrents: anyone for a public, published video;
otherwise the viewers the video's own rule lets in (session, bearer token or file token)."""

from __future__ import annotations

import re

from aiohttp import web

from ..core import Shoal
from ..errors import NotFound
from ..services.files import check_file_token, file_access, image_owner, token_holder
from ..services.visibility import Viewer
from .context import current_user

TORRENT_RE = re.compile(r"^([0-9a-f-]{1,64})-[0-9]{1,5}-hls\.torrent$")


async def media_restricted(request: web.Request, shoal: Shoal, video_uuid: str | None) -> bool:
    """Check that the caller may see the images (thumbnail, preview, storyboard) of a local video.

    Those of a public, published video are anyone's (False: shared caches may keep them). Those
    of any other video open, by the rule of the video itself, for the logged-in caller (session
    cookie or bearer token, as a page's ``<img>`` sends them) or the holder of a videoFileToken
    who may watch it (True: the answer is private); anyone else gets 404, like a missing file.
    """
    access = await file_access(shoal, video_uuid) if video_uuid is not None else None
    if access is None:
        raise NotFound("No such file.", code="file_not_found")
    if access.published and not access.needs_token:
        return False
    user = current_user(request)
    if user is not None and access.opens_for(Viewer.of(user)):
        return True
    holder = check_file_token(shoal.secret, access.uuid, request.query.get("videoFileToken"))
    if holder is not None:
        viewer = await token_holder(shoal, holder)
        if viewer is not None and access.opens_for(viewer):
            return True
    raise NotFound("No such file.", code="file_not_found")


async def torrent_restricted(request: web.Request, shoal: Shoal, name: str) -> bool:
    """The rule of :func:`media_restricted` for a rendition's torrent: it is named after its
    video's storage prefix, as the video's images are; a torrent no local video owns is missing."""
    match = TORRENT_RE.match(name)
    owner = await image_owner(shoal, f"{match.group(1)}.jpg") if match is not None else None
    return await media_restricted(request, shoal, owner)
