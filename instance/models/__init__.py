"""The data model: one model per module, re-exported here."""

from .actor import Actor, ActorKind
from .base import Base, utcnow
from .comment import Comment
from .follow import Follow, FollowState
from .interaction import AbuseReport, RemoteHost, VideoRate, VideoShare, VideoViewDay
from .option import InstanceOption
from .p2p_stats import P2PStats
from .redundancy import MirrorState, VideoMirror, VideoRedundancy
from .rendition import Rendition
from .token import AuthToken, OAuthClient
from .upload import UploadSession
from .user import Role, User, UserState
from .video import Privacy, Video, VideoState, short_uuid, uuid_from_short
from .work import DeliveryBody, WorkItem, WorkState

__all__ = [
    "AbuseReport",
    "Actor",
    "ActorKind",
    "AuthToken",
    "Base",
    "Comment",
    "DeliveryBody",
    "Follow",
    "FollowState",
    "InstanceOption",
    "MirrorState",
    "OAuthClient",
    "P2PStats",
    "Privacy",
    "RemoteHost",
    "Rendition",
    "Role",
    "UploadSession",
    "User",
    "UserState",
    "Video",
    "VideoMirror",
    "VideoRate",
    "VideoRedundancy",
    "VideoShare",
    "VideoState",
    "VideoViewDay",
    "WorkItem",
    "WorkState",
    "short_uuid",
    "utcnow",
    "uuid_from_short",
]
