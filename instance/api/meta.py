"""Instance metadata: public config, about, fixed vocabularies and the OpenAPI document."""

from __future__ import annotations

from aiohttp import web

from .. import __version__
from ..services.options import get_options
from ..vocab import CATEGORIES, LANGUAGES, LICENCES, PRIVACIES
from ..web.context import client_ip, shoal_of
from ..web.responses import json_response
from . import api
from .registry import openapi_document

RESOLUTIONS = [2160, 1440, 1080, 720, 480, 360, 240]


@api.route("GET", "/api/v1/config", summary="Public configuration of the instance", tags=("config",))
async def get_config(request: web.Request) -> web.Response:
    """PeerTube's ServerConfig shape: what a client needs to know before talking to us."""
    shoal = shoal_of(request)
    options = await get_options(shoal)
    settings = shoal.settings
    registration = options["registration"]
    return json_response(
        {
            "serverVersion": __version__,
            "serverCommit": None,
            "software": "shoal",
            "instance": {
                "name": options["instance_name"],
                "shortDescription": options["instance_description"],
                "isNSFW": False,
                "defaultNSFWPolicy": "blur",
                "defaultClientRoute": "/videos/recently-added",
                "customizations": {"javascript": "", "css": ""},
            },
            "signup": {
                "allowed": registration != "closed",
                "allowedForCurrentIP": registration != "closed",
                "requiresEmailVerification": False,
                "requiresApproval": registration == "approval",
                "minimumAge": 16,
            },
            "contactForm": {"enabled": False},
            "email": {"enabled": False},
            "transcoding": {
                "hls": {"enabled": True},
                "webVideos": {"enabled": False},
                "enabledResolutions": RESOLUTIONS,
                "profile": "default",
                "availableProfiles": ["default"],
            },
            "live": {"enabled": False},
            "import": {"videos": {"http": {"enabled": False}, "torrent": {"enabled": False}}},
            "video": {
                "image": {"extensions": [".png", ".jpg", ".jpeg", ".webp"], "size": {"max": 8 * 1024**2}},
                "file": {
                    "extensions": [
                        ".mp4",
                        ".webm",
                        ".mkv",
                        ".mov",
                        ".ogv",
                        ".avi",
                        ".flac",
                        ".mp3",
                        ".ogg",
                        ".wav",
                        ".m4a",
                        ".opus",
                    ]
                },
            },
            "videoCaption": {"file": {"size": {"max": 0}, "extensions": []}},
            "user": {"videoQuota": settings.user_video_quota, "videoQuotaDaily": -1},
            "upload": {"maxFileSize": settings.max_upload_size},
            "tracker": {"enabled": True},
            "federation": {"enabled": True},
            "followings": {"instance": {"autoFollowIndex": {"enabled": False}}},
            "plugin": {"registered": [], "registeredExternalAuths": [], "registeredIdAndPassAuths": []},
            "theme": {"registered": [], "default": "default"},
            "search": {"remoteUri": {"users": True, "anonymous": False}},
            "trending": {"videos": {"intervalDays": 7}},
            "broadcastMessage": {"enabled": False, "message": "", "level": "info", "dismissable": False},
            "homepage": {"enabled": False},
            "clientIP": client_ip(request),
        }
    )


@api.route("GET", "/api/v1/config/about", summary="About the instance", tags=("config",))
async def get_about(request: web.Request) -> web.Response:
    """Name, description and terms, in PeerTube's About shape."""
    options = await get_options(shoal_of(request))
    return json_response(
        {
            "instance": {
                "name": options["instance_name"],
                "shortDescription": options["instance_description"],
                "description": options["instance_description"],
                "terms": "",
                "codeOfConduct": "",
                "moderationInformation": "",
                "administrator": "",
                "languages": [],
                "categories": [],
            }
        }
    )


def _vocab_route(path: str, table: dict, summary: str) -> None:
    async def handler(request: web.Request) -> web.Response:
        return json_response({str(key): label for key, label in table.items()})

    handler.__name__ = "get_" + path.rsplit("/", 1)[1]
    handler.__doc__ = f"{summary}, keyed by id."
    api.route("GET", path, summary=summary, tags=("videos",))(handler)


_vocab_route("/api/v1/videos/categories", CATEGORIES, "Video categories")
_vocab_route("/api/v1/videos/licences", LICENCES, "Video licences")
_vocab_route("/api/v1/videos/languages", LANGUAGES, "Video languages")
_vocab_route("/api/v1/videos/privacies", PRIVACIES, "Video privacies")


@api.route("GET", "/api/v1/openapi.json", summary="This API's OpenAPI 3.1 document", tags=("config",))
async def get_openapi(request: web.Request) -> web.Response:
    """Generated from the declared routes, so it lists every one of them."""
    shoal = shoal_of(request)
    doc = openapi_document(api.routes, server_url=shoal.settings.public_url, version=__version__)
    return json_response(doc)
