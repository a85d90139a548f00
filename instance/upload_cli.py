"""``shoal upload``: send a video to an instance over its REST API, with live progress.

Uses PeerTube's resumable upload protocol (so an interrupted upload resumes where it
stopped when run again) and then follows the processing events until the video is
published or failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

import aiohttp

from .settings import Settings

CHUNK = 8 * 1024 * 1024


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="the video (or audio) file")
    parser.add_argument("--url", default=None, help="the instance's URL (default: SHOAL_PUBLIC_URL)")
    parser.add_argument("--username", "-u", required=True)
    parser.add_argument(
        "--password", "-p", default=os.environ.get("SHOAL_UPLOAD_PASSWORD"), help="or SHOAL_UPLOAD_PASSWORD"
    )
    parser.add_argument("--name", help="title (default: the file name)")
    parser.add_argument("--channel-id", type=int, help="default: your first channel")
    parser.add_argument(
        "--privacy",
        type=int,
        choices=[1, 2, 3, 4],
        default=1,
        help="1 public, 2 unlisted, 3 private, 4 internal",
    )
    parser.add_argument("--description", default="")


class UploadFailed(Exception):
    """The instance refused or the transfer broke; the message says which."""


def _bar(label: str, fraction: float, suffix: str = "") -> str:
    filled = int(30 * min(max(fraction, 0.0), 1.0))
    return f"\r{label:<12}[{'#' * filled}{'.' * (30 - filled)}] {fraction * 100:5.1f}%{suffix}"


async def _check(resp: aiohttp.ClientResponse, *expected: int) -> dict:
    body = await resp.text()
    if resp.status not in expected:
        try:
            detail = json.loads(body).get("detail", body)
        except ValueError:
            detail = body[:200]
        raise UploadFailed(f"{resp.method} {resp.url.path}: {resp.status} {detail}")
    return json.loads(body) if body else {}


async def upload(args: argparse.Namespace, base: str) -> int:
    path: Path = args.file
    if not path.is_file():
        raise UploadFailed(f"no such file: {path}")
    size = path.stat().st_size
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_read=300)) as http:
        async with http.get(f"{base}/api/v1/oauth-clients/local") as resp:
            client = await _check(resp, 200)
        form = {
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
            "grant_type": "password",
            "username": args.username,
            "password": args.password or "",
        }
        async with http.post(f"{base}/api/v1/users/token", data=form) as resp:
            token = (await _check(resp, 200))["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        channel = args.channel_id
        if channel is None:
            async with http.get(f"{base}/api/v1/users/me", headers=auth) as resp:
                channel = (await _check(resp, 200))["videoChannels"][0]["id"]
        meta = {
            "name": args.name or path.stem[:120].ljust(3, "_"),
            "channelId": channel,
            "privacy": args.privacy,
            "description": args.description,
            "filename": path.name,
        }
        headers = {**auth, "X-Upload-Content-Length": str(size), "X-Upload-Content-Type": "video/mp4"}
        async with http.post(f"{base}/api/v1/videos/upload-resumable", json=meta, headers=headers) as resp:
            await _check(resp, 200, 201)
            location = resp.headers["Location"]
            offset = int(resp.headers["Range"].split("-")[1]) + 1 if "Range" in resp.headers else 0
        started = time.monotonic()
        video = None
        with path.open("rb") as fh:
            while video is None:
                fh.seek(offset)
                data = fh.read(CHUNK)
                end = offset + len(data) - 1
                headers = {
                    **auth,
                    "Content-Range": f"bytes {offset}-{end}/{size}",
                    "Content-Type": "application/octet-stream",
                }
                async with http.put(base + location, data=data, headers=headers) as resp:
                    body = await _check(resp, 200, 308)
                    if resp.status == 200:
                        video = body["video"]
                    else:
                        offset = int(resp.headers["Range"].split("-")[1]) + 1
                done = size if video is not None else offset
                speed = done / max(time.monotonic() - started, 1e-6) / 1e6
                print(_bar("upload", done / size if size else 1.0, f" {speed:6.1f} MB/s"), end="", flush=True)
        print()
        async with http.get(f"{base}/api/v1/videos/{video['id']}/events", headers=auth) as resp:
            if resp.status != 200:
                await _check(resp, 200)
            async for line in resp.content:
                if line.startswith(b"data: "):
                    event = json.loads(line[6:])
                    print(
                        _bar(event.get("activity", "?"), event.get("progress", 0) / 100), end="", flush=True
                    )
        print()
        async with http.get(f"{base}/api/v1/videos/{video['id']}", headers=auth) as resp:
            details = await _check(resp, 200)
    if details["state"]["id"] != 1:
        print(
            f"processing failed: {details.get('failureReason') or details['state']['label']}", file=sys.stderr
        )
        return 1
    print(f"published: {base}/w/{details['shortUUID']}")
    return 0


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Entry point of ``shoal upload``."""
    base = (args.url or settings.public_url).rstrip("/")
    try:
        return asyncio.run(upload(args, base))
    except (UploadFailed, aiohttp.ClientError, OSError) as exc:
        print(f"\nshoal upload: {exc}", file=sys.stderr)
        return 1
