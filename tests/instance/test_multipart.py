"""A multipart body whose part headers are broken is a client's error (400), not a crash."""

from __future__ import annotations

from tests.conftest import Instance
from tests.instance.test_videos import login, new_video

BOUNDARY = "5ce8e6f4108b3676c4f68436918a9196"
# What the API fuzzer sent: a part whose header block is not headers at all.
BROKEN = f"--{BOUNDARY}\r\nFalse--{BOUNDARY}--\r\n".encode()


async def test_broken_part_headers_answer_400(instance: Instance) -> None:
    alice = await login(instance, "alice")
    video = await new_video(instance, "alice")
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    for path in (f"/api/v1/videos/{video.id}/thumbnail", "/api/v1/videos/upload"):
        status, body = await alice.post(path, data=BROKEN, headers=headers)
        assert status == 400 and body["code"] == "malformed_form", (path, status, body)
