"""Who may see which video: the one place that decides, for single videos and for lists.

The rules (PeerTube's, with Shoal's processing states):

- public, published, not hidden: everyone;
- unlisted: anyone who has its UUID or short UUID, but it is never listed; its numeric id
  opens it only for its owner and moderators/admins (numeric ids can be counted);
- internal: any logged-in user of this instance (listed only for them);
- private: its owner (the user whose account owns the channel) and moderators/admins;
- not yet published (received … publishing, failed) or hidden by a moderator: its owner
  and moderators/admins only, whatever the privacy.

Lists show what the caller could open *and* what is listable. Owners see everything of
their own in ``/users/me/videos``; elsewhere, privacies other than the listable ones
(``privacyOneOf``) and unpublished or hidden videos (``include``) must be asked for, and
only moderators — or the owner, on their own account or channel — may ask.
A video the caller may not see is answered exactly like a video that does not exist.

Beyond this instance's own viewers, a video is *shared* — sent to other instances, given
torrents, seeded, mirrored — only while it is published, not hidden, and public or unlisted
(:func:`shared`, :func:`shared_clause`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, and_, false, select, true

from ..errors import Forbidden
from ..models import Actor, Privacy, Role, User, Video, VideoState

# PeerTube's VideoInclude bit flags (``include`` query parameter).
TOKEN_PRIVACIES = (Privacy.PRIVATE, Privacy.INTERNAL)
"""Privacies whose files need a videoFileToken (as do a hidden video's)."""

INCLUDE_NOT_PUBLISHED = 1
INCLUDE_HIDDEN = 2

# The privacies whose videos leave the instance (federation, torrents, mirrors).
SHARED_PRIVACIES = (Privacy.PUBLIC, Privacy.UNLISTED)


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is asking: anonymous, or a local user with an account and a role."""

    user_id: int | None = None
    account_id: int | None = None
    role: int | None = None
    nsfw_policy: str = "blur"

    @classmethod
    def of(cls, user: User | None) -> Viewer:
        """The viewer for an authenticated user (or anonymous for None)."""
        if user is None:
            return ANONYMOUS
        return cls(user.id, user.account_id, user.role, user.nsfw_policy)

    @property
    def is_anonymous(self) -> bool:
        """Nobody logged in."""
        return self.user_id is None

    @property
    def is_moderator(self) -> bool:
        """Moderators and admins see everything."""
        return self.role is not None and self.role <= Role.MODERATOR

    @property
    def is_admin(self) -> bool:
        """Admins (who also manage any local channel)."""
        return self.role is not None and self.role <= Role.ADMIN


ANONYMOUS = Viewer()


def shared(video: Video) -> bool:
    """Whether a video (local or remote) may leave the instance: federated, torrented, seeded,
    mirrored. Callers add whether it must be local or remote."""
    return video.state == VideoState.PUBLISHED and not video.hidden and video.privacy in SHARED_PRIVACIES


def shared_clause() -> ColumnElement[bool]:
    """:func:`shared` as a SQL condition on ``Video``."""
    return and_(
        Video.state == VideoState.PUBLISHED, Video.hidden.is_(False), Video.privacy.in_(SHARED_PRIVACIES)
    )


def owns_channel(viewer: Viewer, channel: Actor) -> bool:
    """True when ``channel`` belongs to the viewer's account."""
    return viewer.account_id is not None and channel.owner_id == viewer.account_id


def owns_video(viewer: Viewer, video: Video) -> bool:
    """True when the video is in one of the viewer's channels (``video.channel`` loaded)."""
    return owns_channel(viewer, video.channel)


def can_see_video(viewer: Viewer, video: Video, *, by_number: bool = False) -> bool:
    """Whether ``viewer`` may open ``video`` (``video.channel`` must be loaded).

    ``by_number`` says the caller named the video by its numeric id, which anyone can guess
    by counting: that opens an unlisted video only for its owner and moderators.
    """
    return can_see(
        viewer,
        owner_account_id=video.channel.owner_id,
        privacy=video.privacy,
        hidden=video.hidden,
        published=video.state == VideoState.PUBLISHED,
        by_number=by_number,
    )


def can_see(
    viewer: Viewer,
    *,
    owner_account_id: int | None,
    privacy: int,
    hidden: bool,
    published: bool,
    by_number: bool = False,
) -> bool:
    """:func:`can_see_video` from the columns it needs (for paths that do not load the row)."""
    if viewer.is_moderator or (viewer.account_id is not None and owner_account_id == viewer.account_id):
        return True
    if hidden or not published:
        return False
    if privacy == Privacy.PUBLIC:
        return True
    if privacy == Privacy.UNLISTED:
        return not by_number
    if privacy == Privacy.INTERNAL:
        return not viewer.is_anonymous
    return False


def can_manage_video(viewer: Viewer, video: Video) -> bool:
    """Whether ``viewer`` may edit or delete ``video``: its owner, a moderator or an admin."""
    return viewer.is_moderator or owns_video(viewer, video)


def listable_privacies(viewer: Viewer) -> frozenset[int]:
    """Privacies shown in lists by default: public, plus internal for logged-in users."""
    if viewer.is_anonymous:
        return frozenset({Privacy.PUBLIC})
    return frozenset({Privacy.PUBLIC, Privacy.INTERNAL})


def owned_channel_ids(account_id: int) -> Select:
    """Ids of the channels an account owns, as a subquery."""
    return select(Actor.id).where(Actor.owner_id == account_id)


def listing_clause(
    viewer: Viewer,
    *,
    privacies: list[int] | None = None,
    include: int = 0,
    privileged: bool = False,
) -> ColumnElement[bool]:
    """The WHERE clause of a video list for ``viewer``.

    ``privileged`` means the viewer owns everything the list is scoped to (their own
    account or channel), which lets them ask for any privacy and state, like a moderator.
    Asking for more than one may see is refused with 403 ``insufficient_role`` rather than
    silently narrowed, so a client learns why its filter was not applied.
    """
    allowed_all = privileged or viewer.is_moderator
    listable = listable_privacies(viewer)
    if privacies:
        wanted = set(privacies)
        if not allowed_all and not wanted <= listable:
            raise Forbidden(
                "Only moderators (or the owner, on their own channel or account) may list "
                "videos with these privacies.",
                code="insufficient_role",
                field="privacyOneOf",
            )
    else:
        wanted = set(listable)
    if include & (INCLUDE_NOT_PUBLISHED | INCLUDE_HIDDEN) and not allowed_all:
        raise Forbidden(
            "Only moderators (or the owner, on their own channel or account) may include "
            "unpublished or hidden videos.",
            code="insufficient_role",
            field="include",
        )
    clauses: list[ColumnElement[bool]] = [Video.privacy.in_(sorted(wanted))]
    if not include & INCLUDE_NOT_PUBLISHED:
        clauses.append(Video.state == VideoState.PUBLISHED)
    if not include & INCLUDE_HIDDEN:
        clauses.append(Video.hidden.is_(false()))
    return and_(*clauses)


def owner_clause(viewer: Viewer) -> ColumnElement[bool]:
    """Every video of the viewer's own channels (``/users/me/videos``)."""
    if viewer.account_id is None:
        return false()
    return Video.channel_id.in_(owned_channel_ids(viewer.account_id))


def nsfw_clause(viewer: Viewer, nsfw: str | None) -> ColumnElement[bool]:
    """``nsfw`` = true/false/both; by default hide NSFW only for users whose policy says so."""
    if nsfw is None:
        nsfw = "false" if viewer.nsfw_policy == "do_not_list" else "both"
    if nsfw == "true":
        return Video.nsfw.is_(true())
    if nsfw == "false":
        return Video.nsfw.is_(false())
    return true()
