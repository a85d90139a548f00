"""Shoal's media work: probe uploads, plan the ladder, package HLS, make images, hash.

Pure and app-agnostic: files and a plan go in, files and progress come out. Nothing here
knows about the database, the web or the job queue; ffmpeg and ffprobe run as child
processes (never on the event loop), and blocking file work has ``*_async`` wrappers.

Typical use::

    info = await probe(upload_path)                  # InvalidMedia if we refuse it
    plan = plan_ladder(info)
    result = await transcode_hls(upload_path, out_dir, plan, prefix=uuid)
    await write_segments_sha256_async(out_dir, uuid, result.media_playlists)
    await make_thumbnail(upload_path, out_dir / "thumb.jpg", info=info)
    await make_storyboard(out_dir / result.renditions[-1].file_name, out_dir, uuid,
                          result.duration)
"""

from .errors import InvalidMedia, Timeout, TranscodeFailed, TranscodingError
from .hls import HlsResult, Rendition, build_command, output_names, plan_hls, transcode_hls
from .images import (
    PREVIEW_SIZE,
    THUMBNAIL_SIZE,
    Storyboard,
    make_storyboard,
    make_thumbnail,
    poster_time,
    storyboard_vtt,
)
from .ladder import (
    BITS_PER_PIXEL,
    AudioPlan,
    LadderSettings,
    Plan,
    Rung,
    StillImage,
    can_copy_top,
    max_bitrate,
    plan_ladder,
    reduce_frame_rate,
    rung_bitrate,
)
from .manifest import (
    build_segments_sha256,
    hash_ranges,
    write_segments_sha256,
    write_segments_sha256_async,
)
from .playlist import (
    ByteRange,
    MediaPlaylist,
    PlaylistError,
    Segment,
    Variant,
    parse_media_playlist,
    peak_bandwidth,
    read_media_playlist,
    render_master_playlist,
)
from .probe import MediaInfo, PacketScan, ProbeLimits, check_limits, parse_probe, probe, scan_packets

__all__ = [
    "BITS_PER_PIXEL",
    "PREVIEW_SIZE",
    "THUMBNAIL_SIZE",
    "AudioPlan",
    "ByteRange",
    "HlsResult",
    "InvalidMedia",
    "LadderSettings",
    "MediaInfo",
    "MediaPlaylist",
    "PacketScan",
    "Plan",
    "PlaylistError",
    "ProbeLimits",
    "Rendition",
    "Rung",
    "Segment",
    "StillImage",
    "Storyboard",
    "Timeout",
    "TranscodeFailed",
    "TranscodingError",
    "Variant",
    "build_command",
    "build_segments_sha256",
    "can_copy_top",
    "check_limits",
    "hash_ranges",
    "make_storyboard",
    "make_thumbnail",
    "max_bitrate",
    "output_names",
    "parse_media_playlist",
    "parse_probe",
    "peak_bandwidth",
    "plan_hls",
    "plan_ladder",
    "poster_time",
    "probe",
    "read_media_playlist",
    "reduce_frame_rate",
    "render_master_playlist",
    "scan_packets",
    "rung_bitrate",
    "storyboard_vtt",
    "transcode_hls",
    "write_segments_sha256",
    "write_segments_sha256_async",
]
