"""The rules of a video's fields, defined once: lengths, vocabularies and value checks
(PeerTube's bounds: what other instances accept of what we send).

Three places read them:

- :func:`check_video_fields`, which every write of a local video's fields goes through (REST
  update, upload, tests): a dict of model attribute names, 400 ``invalid_field`` naming the
  REST field;
- the request models of the REST update and the uploads, through the pydantic types below
  (:data:`NameField` …), so a bad value is refused with the same bounds before any work;
- federation, which reads a remote video's fields within the same bounds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from ..errors import BadRequest
from ..models import Privacy
from ..vocab import CATEGORIES, LANGUAGES, LICENCES

NAME_MIN, NAME_MAX = 3, 120
DESCRIPTION_MAX = 10_000
SUPPORT_MAX = 1000
TEXT_MIN = 3  # a description or support text, when given
TAGS_MAX, TAG_MIN, TAG_MAX = 5, 2, 30
LANGUAGE_MAX = 16  # a language code's length, checked before the code itself
PRIVACIES = frozenset(int(p) for p in Privacy)
MAX_DB_INT = 2**31 - 1
UNKNOWN_LANGUAGE = "_unknown"


# The REST names of the attributes a client sets, for error messages naming the field.
API_FIELDS = {
    "name": "name",
    "description": "description",
    "support": "support",
    "privacy": "privacy",
    "category": "category",
    "licence": "licence",
    "language": "language",
    "tags": "tags",
    "nsfw": "nsfw",
    "comments_enabled": "commentsEnabled",
    "download_enabled": "downloadEnabled",
    "wait_transcoding": "waitTranscoding",
    "originally_published_at": "originallyPublishedAt",
    "channel_id": "channelId",
    "comments_policy": "commentsPolicy",
}


def storable(text: str) -> bool:
    """Whether a database can store ``text`` (no NUL, no lone surrogates)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_text(value: Any, name: str, *, maximum: int, minimum: int = 0) -> str:
    """``value`` if it is storable text of ``minimum`` to ``maximum`` characters; 400 naming the field."""
    field_name = API_FIELDS.get(name, name)
    if not isinstance(value, str):
        raise BadRequest(f"'{field_name}' must be a text.", code="invalid_field", field=field_name)
    if not storable(value):
        raise BadRequest(
            f"'{field_name}' must be Unicode text without NUL characters.",
            code="invalid_field",
            field=field_name,
        )
    if not minimum <= len(value) <= maximum:
        raise BadRequest(
            f"'{field_name}' must have {minimum} to {maximum} characters.",
            code="invalid_field",
            field=field_name,
        )
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def known_privacy(value: Any) -> bool:
    """1 (public), 2 (unlisted), 3 (private) or 4 (internal)."""
    return _is_int(value) and value in PRIVACIES


def known_category(value: Any) -> bool:
    """None or one of PeerTube's category ids."""
    return value is None or (_is_int(value) and value in CATEGORIES)


def known_licence(value: Any) -> bool:
    """None or one of PeerTube's licence ids."""
    return value is None or (_is_int(value) and value in LICENCES)


def known_language(value: Any) -> bool:
    """None or one of PeerTube's language codes."""
    return value is None or (isinstance(value, str) and value in LANGUAGES)


def check_tags(tags: Any) -> list[str]:
    """At most 5 tags of 2 to 30 characters each; duplicates (ignoring case) dropped."""
    if not isinstance(tags, list | tuple):
        raise BadRequest("'tags' must be a list of texts.", code="invalid_field", field="tags")
    if len(tags) > TAGS_MAX:
        raise BadRequest(f"A video has at most {TAGS_MAX} tags.", code="invalid_field", field="tags")
    seen: dict[str, str] = {}
    for tag in tags:
        text = check_text(tag, "tags", minimum=TAG_MIN, maximum=TAG_MAX).strip()
        if len(text) < TAG_MIN:
            raise BadRequest(
                f"Each tag has {TAG_MIN} to {TAG_MAX} characters.", code="invalid_field", field="tags"
            )
        seen.setdefault(text.lower(), text)
    return list(seen.values())


def _as_utc(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise BadRequest(
            f"'{API_FIELDS[name]}' must be a date.", code="invalid_field", field=API_FIELDS[name]
        )
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise BadRequest(
            f"'{API_FIELDS[name]}' is out of range.", code="invalid_field", field=API_FIELDS[name]
        ) from None


def check_video_fields(values: dict[str, Any]) -> dict[str, Any]:
    """Validate video attributes (keys are model attribute names); return them normalised.

    Errors are 400 ``invalid_field`` naming the REST field, so the API and internal
    callers (the upload pipeline) share one set of rules — PeerTube's bounds.
    """
    out: dict[str, Any] = {}
    for name, value in values.items():
        field_name = API_FIELDS.get(name)
        if field_name is None:
            raise BadRequest(f"'{name}' cannot be set.", code="invalid_field", field=name)
        if name == "name":
            value = check_text(value, name, minimum=NAME_MIN, maximum=NAME_MAX).strip()
            if len(value) < NAME_MIN:
                raise BadRequest(
                    f"'name' must have {NAME_MIN} to {NAME_MAX} characters.",
                    code="invalid_field",
                    field="name",
                )
        elif name in ("description", "support"):
            maximum = DESCRIPTION_MAX if name == "description" else SUPPORT_MAX
            value = check_text("" if value is None else value, name, maximum=maximum)
            if 0 < len(value) < TEXT_MIN:
                # PeerTube's bound (empty, or 3 to the maximum): other instances refuse less.
                raise BadRequest(
                    f"'{name}' is empty or has {TEXT_MIN} to {maximum} characters.",
                    code="invalid_field",
                    field=name,
                )
        elif name == "privacy":
            if not known_privacy(value):
                raise BadRequest(
                    "'privacy' must be 1 (public), 2 (unlisted), 3 (private) or 4 (internal).",
                    code="invalid_field",
                    field="privacy",
                )
            value = int(value)
        elif name == "category":
            if not known_category(value):
                raise BadRequest("Unknown category.", code="invalid_field", field="category")
        elif name == "licence":
            if not known_licence(value):
                raise BadRequest("Unknown licence.", code="invalid_field", field="licence")
        elif name == "language":
            if not known_language(value):
                raise BadRequest("Unknown language.", code="invalid_field", field="language")
        elif name == "tags":
            value = check_tags(value)
        elif name in ("nsfw", "comments_enabled", "download_enabled", "wait_transcoding"):
            if not isinstance(value, bool):
                raise BadRequest(
                    f"'{field_name}' must be true or false.", code="invalid_field", field=field_name
                )
        elif name == "originally_published_at":
            value = _as_utc(value, name)
        elif name == "comments_policy":
            # PeerTube's policy: 1 enabled, 2 disabled (3, approval first, is not supported yet).
            if not _is_int(value) or value not in (1, 2):
                raise BadRequest(
                    "'commentsPolicy' must be 1 (enabled) or 2 (disabled).",
                    code="invalid_field",
                    field="commentsPolicy",
                )
            name, value = "comments_enabled", value == 1
        elif name == "channel_id":
            if not _is_int(value) or not 0 < value <= MAX_DB_INT:
                raise BadRequest("'channelId' must be a channel id.", code="invalid_field", field="channelId")
        out[name] = value
    return out


# ---------------------------------------------------------------- the same rules for request models
#
# A validator raises ValueError; the API layer turns it into 400 ``invalid_field`` naming the field.


def storable_text(value: str) -> str:
    """``value`` if a database can store it (pydantic validator: ValueError otherwise)."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    if not storable(value):
        raise ValueError("must be valid Unicode text")
    return value


def _rule(known: Any, message: str) -> AfterValidator:
    def check(value: Any) -> Any:
        if not known(value):
            raise ValueError(message)
        return value

    return AfterValidator(check)


StorableText = Annotated[str, AfterValidator(storable_text)]
NameField = Annotated[StorableText, Field(min_length=NAME_MIN, max_length=NAME_MAX)]
DescriptionField = Annotated[StorableText, Field(max_length=DESCRIPTION_MAX)]
SupportField = Annotated[StorableText, Field(max_length=SUPPORT_MAX)]
TagField = Annotated[StorableText, Field(min_length=TAG_MIN, max_length=TAG_MAX)]
TagsField = Annotated[list[TagField], Field(max_length=TAGS_MAX)]
PrivacyField = Annotated[
    int, _rule(known_privacy, "must be 1 (public), 2 (unlisted), 3 (private) or 4 (internal)")
]
CategoryField = Annotated[int, _rule(known_category, "unknown category id")]
LicenceField = Annotated[int, _rule(known_licence, "unknown licence id")]
LanguageField = Annotated[
    StorableText, Field(max_length=LANGUAGE_MAX), _rule(known_language, "unknown language code")
]
