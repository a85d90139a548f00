"""One typed settings object, read from ``SHOAL_*`` environment variables and an optional TOML file.

Every field carries a help line; the README's settings table is checked against them by a test.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*s?\s*$")


class SettingsError(Exception):
    """Raised when settings cannot be loaded; the message names the variable and the fix."""


class Settings(BaseSettings):
    """Effective configuration of one Shoal process."""

    model_config = SettingsConfigDict(env_prefix="SHOAL_", extra="forbid", validate_default=True, frozen=True)
    config_file: ClassVar[str | Path | None] = None

    public_url: str = Field(
        "http://127.0.0.1:9000",
        description="the instance's public base URL (ActivityPub ids, links)",
    )
    listen: str = Field("127.0.0.1:9000", description="host:port to bind")
    data_dir: Path = Field(Path("./data"), description="SQLite file, local storage, seeder state")
    database_url: str | None = Field(
        None,
        description="`sqlite+aiosqlite:///…` or `postgresql+asyncpg://…`; default: SQLite in the data dir",
    )
    redis_url: str | None = Field(
        None,
        description="Redis for arq jobs, rate limits, view counters; unset = embedded",
    )
    redis_prefix: str = Field("shoal", description="prefix of every Redis key and arq queue name")
    storage_url: str | None = Field(
        None,
        description="`file:///path` or `s3://bucket/prefix`; default: `file://<data dir>/storage`",
    )
    s3_endpoint_url: str | None = Field(None, description="S3 endpoint (MinIO, R2, Ceph); unset = AWS")
    s3_region: str = Field("us-east-1", description="S3 region")
    s3_access_key: SecretStr | None = Field(None, description="S3 access key id")
    s3_secret_key: SecretStr | None = Field(None, description="S3 secret access key")
    s3_public_url: str | None = Field(
        None, description="public base URL of the bucket (CDN); files are linked there"
    )
    registration: Literal["open", "approval", "closed"] = Field(
        "open", description="sign-up mode: `open`, `approval` or `closed`"
    )
    admin_user: str = Field("admin", description="name of the admin created at start")
    admin_password: SecretStr | None = Field(
        None, description="when set, the admin is created at start if missing"
    )
    admin_email: str = Field("admin@localhost", description="e-mail of the admin created at start")
    federation_allow_hosts: str = Field(
        "",
        description="comma list of hosts/CIDRs exempt from the SSRF guard (tests, LANs)",
    )
    workers: Literal["embedded", "external"] | None = Field(
        None,
        description="`embedded` (in-process jobs) or `external` (`shoal worker` processes); "
        "default `embedded` without Redis, `external` with it",
    )
    secret_key: SecretStr | None = Field(
        None,
        description="server secret for tokens and cookies; default: generated once into the data dir",
    )
    instance_name: str = Field("Shoal", description="instance name shown to users (admins may change it)")
    instance_description: str = Field(
        "A Shoal video instance.", description="short description of the instance"
    )
    max_upload_size: int = Field(8 * 1024**3, description="largest accepted upload in bytes", gt=0)
    upload_session_ttl: int = Field(
        3600, description="seconds an idle resumable upload is kept before its bytes are removed", gt=0
    )
    keep_originals: bool = Field(False, description="keep each uploaded original in storage after processing")
    file_token_ttl: int = Field(
        7200, description="lifetime (s) of the tokens that open private and internal videos' files", gt=0
    )
    transcoding_resolutions: str = Field(
        "2160,1440,1080,720,480,360,240", description="ladder heights, comma list; never above the source"
    )
    transcoding_preset: str = Field("veryfast", description="x264 preset")
    transcoding_threads: int = Field(0, description="ffmpeg threads per job; 0 = automatic", ge=0)
    transcoding_copy_top: bool = Field(
        True,
        description="copy a source's H.264 video as the top rung when it already fits it (size, "
        "frame rate, bitrate, keyframes) instead of encoding it again",
    )
    transcoding_nice: int = Field(10, description="niceness of ffmpeg processes", ge=0, le=19)
    max_video_width: int = Field(8192, description="uploads wider than this are refused", gt=0)
    max_video_height: int = Field(8192, description="uploads taller than this are refused", gt=0)
    max_video_pixels: int = Field(
        8192 * 4320, description="uploads with more pixels per frame than this are refused", gt=0
    )
    max_video_duration: int = Field(
        4 * 3600, description="uploads longer than this many seconds are refused", gt=0
    )
    user_video_quota: int = Field(
        -1, description="default per-user storage quota in bytes for new users; -1 = unlimited"
    )
    access_token_ttl: int = Field(86400, description="lifetime of an API access token (s)", gt=0)
    refresh_token_ttl: int = Field(
        14 * 86400, description="lifetime of an API refresh token and a web session (s)", gt=0
    )
    rate_limit_login: str = Field("15/300", description="logins and token grants per client IP: `N/seconds`")
    rate_limit_register: str = Field("10/3600", description="sign-ups per client IP: `N/seconds`")
    rate_limit_upload: str = Field("30/60", description="upload requests per client IP: `N/seconds`")
    trust_proxy: bool = Field(
        False, description="trust X-Forwarded-For/-Proto from the reverse proxy for the client IP"
    )
    accel_redirect_prefix: str | None = Field(
        None,
        description="behind nginx: answer local-storage files with `X-Accel-Redirect: <prefix><key>` "
        "(an `internal` nginx location, e.g. `/internal-storage/`) instead of sending them",
    )
    views_window: int = Field(
        3600, description="a viewer's views of one video count once per this many seconds", gt=0
    )
    views_flush_interval: float = Field(
        60.0, description="seconds between flushes of counted views to the database", gt=0
    )
    trending_days: int = Field(7, description="trending ranks videos by views over this many days", gt=0)
    max_json_body: int = Field(1024 * 1024, description="largest accepted JSON request body in bytes", gt=0)
    jobs_concurrency: int = Field(2, description="jobs one process runs at once (embedded or worker)", gt=0)
    jobs_sweep_interval: float = Field(
        10.0, description="seconds between sweeps for due or stuck work rows", gt=0
    )
    jobs_max_lease: float = Field(
        600.0, description="longest claim (s) on a job before another worker may take it over", gt=0
    )
    p2p_enabled: bool = Field(
        True, description="P2P on this instance: tracker, torrents in the API, seeder (off = HTTP only)"
    )
    rate_limit_tracker: str = Field(
        "120/60", description="tracker announces and scrapes per client IP (HTTP and WebSocket): `N/seconds`"
    )
    seeder_enabled: bool | None = Field(
        None,
        description="run the BitTorrent seeder inside the web process; unset = yes without Redis (one "
        "process), no with Redis (run `shoal seeder`)",
    )
    seeder_port: int = Field(
        0, description="BitTorrent listen port of the seeder; 0 = any free port", ge=0, le=65535
    )
    seeder_max_torrents: int = Field(
        50, description="renditions seeded at once (most watched and newest videos first)", gt=0
    )
    seeder_upload_limit: int = Field(
        0, description="seeder upload rate limit in bytes/s; 0 = unlimited", ge=0
    )
    seeder_super_seeding: bool = Field(
        True,
        description="seed in BEP 16 super-seeding mode: each peer gets pieces nobody has yet, so the "
        "seeder sends about one copy and peers share the rest (see bench/README.md)",
    )
    seeder_cache_size: int = Field(
        10 * 1024**3, description="bytes of rendition files the seeder caches with S3 storage (LRU)", gt=0
    )
    seeder_stun_server: str = Field(
        "",
        description="STUN server `host:port` for WebRTC: the seeder's WebTorrent peers and the players' "
        "P2P; empty = none (peers on one network only)",
    )
    redundancy_strategy: Literal["manual", "newest", "most_viewed"] = Field(
        "manual",
        description="which remote videos (of followed instances allowed for redundancy) this instance "
        "mirrors: `manual` (admin's picks only), `newest` or `most_viewed` (up to the quota)",
    )
    redundancy_size: int = Field(
        10 * 1024**3, description="storage quota of the mirrors of remote videos, in bytes", ge=0
    )
    redundancy_lifetime: float = Field(
        48 * 3600.0,
        description="seconds a mirror is announced for (CacheFile `expires`); renewed at half-life "
        "while it is still wanted",
        gt=0,
    )
    redundancy_check_interval: float = Field(
        3600.0, description="seconds between redundancy chores (pick, renew and expire mirrors)", gt=0
    )
    db_pool_size: int = Field(10, description="PostgreSQL connection pool size", gt=0)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="log level")
    log_format: Literal["text", "json"] = Field(
        "text", description="`text` for people, `json` for log collectors"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Init arguments win over the environment, which wins over the TOML file."""
        toml = cls.config_file
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml))
        return tuple(sources)

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL such as https://videos.example.org")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError("must be a bare origin without a path, e.g. https://videos.example.org")
        return f"{parts.scheme}://{parts.netloc}"

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("must be host:port, e.g. 127.0.0.1:9000")
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.startswith(("postgresql://", "postgres://")):
            value = "postgresql+asyncpg://" + value.split("://", 1)[1]
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:/// or postgresql+asyncpg://")
        return value

    @field_validator("storage_url")
    @classmethod
    def _check_storage_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme == "file" and parts.path:
            return value
        if parts.scheme == "s3" and parts.netloc:
            return value
        raise ValueError("must be file:///absolute/path or s3://bucket/prefix")

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis:// URL, e.g. redis://127.0.0.1:6379/0")
        return value or None

    @field_validator("rate_limit_login", "rate_limit_register", "rate_limit_upload", "rate_limit_tracker")
    @classmethod
    def _check_rate(cls, value: str) -> str:
        match = RATE_RE.match(value)
        if not match or int(match.group(2)) == 0:
            raise ValueError("must be N/seconds, e.g. 15/300")
        return value

    @field_validator("transcoding_resolutions")
    @classmethod
    def _check_resolutions(cls, value: str) -> str:
        parts = [p.strip() for p in value.split(",") if p.strip()]
        if not parts or not all(p.isdigit() and 144 <= int(p) <= 4320 for p in parts):
            raise ValueError("must be a comma list of heights between 144 and 4320, e.g. 1080,720,480")
        return ",".join(parts)

    @field_validator("accel_redirect_prefix")
    @classmethod
    def _check_accel_prefix(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith("/") or any(c.isspace() for c in value):
            raise ValueError("must be a URL path such as /internal-storage/")
        return value.rstrip("/") + "/"

    @field_validator("federation_allow_hosts")
    @classmethod
    def _check_allow_hosts(cls, value: str) -> str:
        return ",".join(part.strip() for part in value.split(",") if part.strip())

    @model_validator(mode="after")
    def _check_s3(self) -> Settings:
        if self.workers == "external" and not self.redis_url:
            raise ValueError("SHOAL_WORKERS=external needs SHOAL_REDIS_URL (the job queue)")
        return self

    # Derived values -------------------------------------------------------

    @property
    def effective_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file in the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir.resolve() / 'shoal.db'}"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    @property
    def effective_storage_url(self) -> str:
        """The storage URL, defaulting to a directory in the data dir."""
        return self.storage_url or f"file://{self.data_dir.resolve() / 'storage'}"

    @property
    def workers_mode(self) -> str:
        """Where jobs run: in this process, or in `shoal worker` processes."""
        if self.workers:
            return self.workers
        return "external" if self.redis_url else "embedded"

    @property
    def listen_host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def listen_port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @property
    def public_host(self) -> str:
        """host[:port] of the public URL, as used in handles (`name@host`)."""
        return urlsplit(self.public_url).netloc

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")

    @property
    def ladder_heights(self) -> list[int]:
        return sorted({int(p) for p in self.transcoding_resolutions.split(",")}, reverse=True)

    @property
    def seeder_in_web(self) -> bool:
        """Whether the web process runs the seeder: ``seeder_enabled`` if set, else when the
        instance is one process (no Redis); with Redis there may be several web processes, and
        one ``shoal seeder`` seeds for them all."""
        if not self.p2p_enabled:
            return False
        if self.seeder_enabled is None:
            return self.redis_url is None
        return self.seeder_enabled

    @property
    def allow_hosts(self) -> list[str]:
        return [p for p in self.federation_allow_hosts.split(",") if p]

    def rate(self, name: str) -> tuple[int, int]:
        """(limit, window seconds) of the rate limit called ``name`` (login, register, upload)."""
        match = RATE_RE.match(getattr(self, f"rate_limit_{name}"))
        assert match is not None
        return int(match.group(1)), int(match.group(2))

    def server_secret(self) -> bytes:
        """The server secret: from settings, or generated once and kept in the data dir."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        path = self.data_dir / "secret_key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(secrets.token_urlsafe(48))
            tmp.chmod(0o600)
            tmp.replace(path)
        return path.read_text().strip().encode()

    def masked(self) -> dict[str, Any]:
        """The effective settings as a dict, secrets masked, for `shoal config show`."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "********" if value.get_secret_value() else ""
            elif isinstance(value, Path):
                value = str(value)
            elif name in ("database_url", "redis_url") and value:
                value = mask_url_password(value)
            out[name] = value
        out["effective_database_url"] = mask_url_password(self.effective_database_url)
        out["effective_storage_url"] = self.effective_storage_url
        out["workers_mode"] = self.workers_mode
        return out


def mask_url_password(url: str) -> str:
    """Replace the password of a URL with asterisks."""
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":********@", 1)
    return url


def env_name(field: str) -> str:
    """The environment variable that sets ``field``."""
    return f"SHOAL_{field.upper()}"


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Load settings from overrides, the environment and an optional TOML file.

    Raises :class:`SettingsError` with one line per bad value, naming the variable.
    """
    import os

    config_file = config_file or os.environ.get("SHOAL_CONFIG") or None
    if config_file is not None and not Path(config_file).is_file():
        raise SettingsError(f"SHOAL_CONFIG: no such file {config_file}")
    cls: type[Settings] = type("Settings", (Settings,), {"config_file": config_file})
    try:
        return cls(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "settings"
            name = env_name(field) if field in Settings.model_fields else field
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown setting"
            lines.append(f"{name}: {msg} (got {err.get('input')!r})")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None


def settings_table() -> str:
    """The README's settings table, generated from the fields (a test keeps the README in sync)."""
    rows = ["| variable | meaning | default |", "|---|---|---|"]
    for name, info in Settings.model_fields.items():
        default = info.default
        if default is None:
            shown = "unset"
        elif isinstance(default, bool):
            shown = f"`{str(default).lower()}`"
        elif default == "":
            shown = "empty"
        else:
            shown = f"`{default}`"
        rows.append(f"| `{env_name(name)}` | {info.description} | {shown} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(settings_table())
