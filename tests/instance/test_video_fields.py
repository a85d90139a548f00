"""A video's field rules are defined once (instance/services/video_fields.py): the REST update
model, the upload model and the service check refuse and accept the same values."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from instance.api.videos import VideoUpdate
from instance.errors import BadRequest
from instance.services import video_fields as rules
from instance.services.uploads import VideoAttributes

BAD = [
    ("name", "ab"),
    ("name", "x" * (rules.NAME_MAX + 1)),
    ("name", "bad\x00name"),
    ("description", "d" * (rules.DESCRIPTION_MAX + 1)),
    ("support", "s" * (rules.SUPPORT_MAX + 1)),
    ("privacy", 9),
    ("category", 999),
    ("licence", 99),
    ("language", "klingon"),
    ("tags", ["a"]),
    ("tags", ["ok", "t" * (rules.TAG_MAX + 1)]),
    ("tags", [f"t{n}" for n in range(rules.TAGS_MAX + 1)]),
]
GOOD = [
    ("name", "x" * rules.NAME_MAX),
    ("description", "d" * rules.DESCRIPTION_MAX),
    ("privacy", 3),
    ("category", 1),
    ("licence", 1),
    ("language", "fr"),
    ("tags", [f"t{n}" for n in range(rules.TAGS_MAX)]),
]


def _upload(name: str, value: Any) -> dict[str, Any]:
    return {"name": "A video", "channelId": 1, rules.API_FIELDS[name]: value}


@pytest.mark.parametrize(("name", "value"), BAD)
def test_every_layer_refuses_a_value_out_of_bounds(name: str, value: Any) -> None:
    with pytest.raises(BadRequest) as refused:
        rules.check_video_fields({name: value})
    assert refused.value.field == rules.API_FIELDS[name]
    with pytest.raises(ValidationError):
        VideoUpdate.model_validate({rules.API_FIELDS[name]: value})
    with pytest.raises(ValidationError):
        VideoAttributes.model_validate(_upload(name, value))


@pytest.mark.parametrize(("name", "value"), GOOD)
def test_every_layer_accepts_a_value_within_bounds(name: str, value: Any) -> None:
    assert rules.check_video_fields({name: value})[name] == value
    VideoUpdate.model_validate({rules.API_FIELDS[name]: value})
    VideoAttributes.model_validate(_upload(name, value))


def test_federation_reads_the_same_bounds() -> None:
    from federation import video_parse as videos

    assert (videos.NAME_MIN, videos.NAME_MAX, videos.DESCRIPTION_MAX) == (
        rules.NAME_MIN,
        rules.NAME_MAX,
        rules.DESCRIPTION_MAX,
    )
    assert (videos.TAG_MIN, videos.TAG_MAX, videos.TAGS_MAX) == (rules.TAG_MIN, rules.TAG_MAX, rules.TAGS_MAX)
