"""Chosen thumbnails: checked, re-encoded to both JPEG sizes, stored, kept by processing."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import aiohttp

from instance.models import Video
from instance.services.thumbnails import MAX_BYTES
from tests.conftest import ApiClient, Instance
from tests.instance.test_pipeline import fetch
from tests.instance.test_videos import new_video
from tests.media import make_clip
from tests.support import channel_of, wait_done


def picture(path: Path, color: str, codec: str = "png", size: str = "640x480") -> bytes:
    """A one-colour picture made by ffmpeg (png, mjpeg or libwebp)."""
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", f"color=c={color}:s={size}",
         "-frames:v", "1", "-c:v", codec, "-f", "image2", str(path)],
        check=True,
    )
    return path.read_bytes()


def probe(data: bytes, tmp: Path) -> tuple[str, int, int, tuple[int, int, int]]:
    """Codec, width, height and the centre pixel's RGB of a picture."""
    path = tmp / "probe.bin"
    path.write_bytes(data)
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "json",
         str(path)],
        check=True, capture_output=True,
    ).stdout
    stream = json.loads(out)["streams"][0]
    rgb = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-vf", "crop=2:2,scale=1:1",
         "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        check=True, capture_output=True,
    ).stdout
    return stream["codec_name"], stream["width"], stream["height"], (rgb[0], rgb[1], rgb[2])


async def post_thumbnail(client: ApiClient, video_id: int, data: bytes, name: str = "t.png") -> tuple:
    form = aiohttp.FormData()
    form.add_field("thumbnailfile", io.BytesIO(data), filename=name)
    return await client.post(f"/api/v1/videos/{video_id}/thumbnail", data=form)


async def images(instance: Instance, client: ApiClient, video_id: int, tmp: Path) -> list[tuple]:
    """(codec, width, height, centre RGB) of the thumbnail and the preview served over HTTP."""
    status, body = await client.get(f"/api/v1/videos/{video_id}")
    assert status == 200, body
    found = []
    for key in ("thumbnailPath", "previewPath"):
        status, data, _ = await fetch(instance.url + body[key])
        assert status == 200, key
        found.append(probe(data, tmp))
    return found


def reddish(rgb: tuple[int, int, int]) -> bool:
    return rgb[0] > 180 and rgb[1] < 80 and rgb[2] < 80


def bluish(rgb: tuple[int, int, int]) -> bool:
    return rgb[2] > 180 and rgb[0] < 80 and rgb[1] < 80


async def test_upload_with_thumbnail_survives_processing_then_replace(
    instance: Instance, tmp_path: Path
) -> None:
    client = await instance.user_client("alice")
    red = picture(tmp_path / "red.png", "red")
    clip = make_clip(tmp_path, "short.mp4", 320, 180, 24, 2.0)
    form = aiohttp.FormData()
    form.add_field("channelId", str(await channel_of(client)))
    form.add_field("name", "Chosen picture")
    form.add_field("videofile", io.BytesIO(clip.read_bytes()), filename=clip.name)
    form.add_field("thumbnailfile", io.BytesIO(red), filename="red.png")
    status, body = await client.post("/api/v1/videos/upload", data=form)
    assert status == 200, body
    video_id = body["video"]["id"]
    done = await wait_done(client, video_id)
    assert done["state"]["id"] == 1, done["state"]
    thumb, preview = await images(instance, client, video_id, tmp_path)
    (t_codec, t_w, t_h, t_rgb), (p_codec, p_w, p_h, p_rgb) = thumb, preview
    assert (t_codec, t_w, t_h) == ("mjpeg", 280, 157)
    assert (p_codec, p_w, p_h) == ("mjpeg", 850, 480)
    # Processing published its own frame (testsrc2) elsewhere, not over the chosen picture.
    assert reddish(t_rgb) and reddish(p_rgb), (t_rgb, p_rgb)

    # Replaced after publication with a WebP; same keys, new pictures, new URLs (served immutable).
    status, before = await client.get(f"/api/v1/videos/{video_id}")
    blue = picture(tmp_path / "blue.webp", "blue", "libwebp")
    status, body = await post_thumbnail(client, video_id, blue, "blue.webp")
    assert status == 204, body
    status, after = await client.get(f"/api/v1/videos/{video_id}")
    for key in ("thumbnailPath", "previewPath"):
        assert after[key] != before[key] and after[key].split("?")[0] == before[key].split("?")[0]
    (_, _, _, t_rgb), (_, _, _, p_rgb) = await images(instance, client, video_id, tmp_path)
    assert bluish(t_rgb) and bluish(p_rgb), (t_rgb, p_rgb)
    async with instance.shoal.db.read() as session:
        row = await session.get(Video, video_id)
        assert row.custom_thumbnail
        assert row.thumbnail == f"thumbnails/{row.storage_prefix or row.uuid}.jpg"


async def test_bad_pictures_are_refused_with_a_reason(instance: Instance, tmp_path: Path) -> None:
    alice = await instance.user_client("alice")
    video = await new_video(instance, "alice", "Picture tests")
    jpeg = picture(tmp_path / "ok.jpg", "green", "mjpeg")
    refused = {
        "text": b"hello, this is not a picture\n",
        "png magic, junk after": b"\x89PNG\r\n\x1a\n" + b"\x00junk" * 100,
        "truncated jpeg": jpeg[: len(jpeg) // 3],
        "gif": b"GIF89a" + b"\x00" * 100,
        "too large": b"\xff\xd8\xff" + b"\x00" * MAX_BYTES,
        "empty": b"",
    }
    for what, data in refused.items():
        status, body = await post_thumbnail(alice, video.id, data)
        assert status == 400, (what, status, body)
        assert body["code"] == "invalid_thumbnail", (what, body)
        assert "thumbnail was refused" in body["detail"], (what, body)
    async with instance.shoal.db.read() as session:
        assert not (await session.get(Video, video.id)).custom_thumbnail
    # Only who may edit the video.
    bob = await instance.user_client("bob")
    status, body = await post_thumbnail(bob, video.id, jpeg)
    assert status == 403, body
    status, body = await post_thumbnail(instance.client, video.id, jpeg)
    assert status == 401, body
    status, body = await alice.post(f"/api/v1/videos/{video.id}/thumbnail", json={"x": 1})
    assert status == 400, body
    # An acceptable one.
    status, body = await post_thumbnail(alice, video.id, jpeg, "ok.jpg")
    assert status == 204, body
    status, details = await alice.get(f"/api/v1/videos/{video.id}")
    assert details["thumbnailPath"] and details["previewPath"]


async def test_upload_with_bad_thumbnail_creates_nothing(instance: Instance, tmp_path: Path) -> None:
    client = await instance.user_client("alice")
    clip = make_clip(tmp_path, "short.mp4", 320, 180, 24, 2.0)
    form = aiohttp.FormData()
    form.add_field("channelId", str(await channel_of(client)))
    form.add_field("name", "Bad picture")
    form.add_field("videofile", io.BytesIO(clip.read_bytes()), filename=clip.name)
    form.add_field("thumbnailfile", io.BytesIO(b"<svg onload=alert(1)>"), filename="x.svg")
    status, body = await client.post("/api/v1/videos/upload", data=form)
    assert status == 400 and body["field"] == "thumbnailfile", body
    status, mine = await client.get("/api/v1/users/me/videos")
    assert mine["total"] == 0, mine
