"""deploy/: the compose file's structure, the .env example, the Dockerfile and the systemd units.

CI cannot run Docker here, so the compose file is checked as data: the services the issue
names, their replicas, dependencies, healthchecks, and that every `${VAR}` it needs and every
Shoal setting are in the .env example.
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from instance.settings import Settings, env_name, load_settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def env_example() -> dict[str, str]:
    values = {}
    for line in (DEPLOY / ".env.example").read_text().splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            values[match.group(1)] = match.group(2)
    return values


def active_env() -> dict[str, str]:
    return {
        k: v
        for k, v in (
            line.split("=", 1)
            for line in (DEPLOY / ".env.example").read_text().splitlines()
            if line and not line.startswith("#")
        )
    }


def test_services_of_the_scaled_topology(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", "redis", "minio", "minio-init", "migrate", "web", "worker", "seeder", "nginx"} <= set(
        services
    )
    assert services["web"]["deploy"]["replicas"] == 2
    assert services["worker"]["deploy"]["replicas"] == 2
    assert services["web"]["command"] == ["serve"]
    assert services["worker"]["command"] == ["worker"]
    assert services["seeder"]["command"] == ["seeder"]
    for name in ("web", "worker", "seeder", "migrate"):
        assert services[name]["image"] == "shoal:latest"
        assert services[name]["env_file"] == ".env"
    assert services["migrate"]["build"]["dockerfile"] == "deploy/Dockerfile"
    assert services["migrate"]["command"] == ["db", "upgrade"]


def test_start_order_waits_for_health_and_migrations(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("web", "worker", "seeder"):
        deps = services[name]["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy"
        assert deps["redis"]["condition"] == "service_healthy"
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        assert deps["minio-init"]["condition"] == "service_completed_successfully"
    assert services["nginx"]["depends_on"]["web"]["condition"] == "service_healthy"
    assert services["minio-init"]["depends_on"]["minio"]["condition"] == "service_healthy"


def test_every_long_running_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if name in ("migrate", "minio-init"):
            assert service.get("restart") == "no"
            continue
        check = service.get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"
        assert not check.get("disable")
    assert "/api/v1/config" in " ".join(compose["services"]["web"]["healthcheck"]["test"])
    assert "doctor" in compose["services"]["worker"]["healthcheck"]["test"]


def test_minio_bucket_is_created_at_start(compose: dict[str, Any]) -> None:
    script = "\n".join(compose["services"]["minio-init"]["command"])
    assert re.search(r"mc mb --ignore-existing \"local/\$\$MINIO_BUCKET\"", script)
    assert "mc anonymous set download" in script
    bucket = env_example()["MINIO_BUCKET"]
    assert active_env()["SHOAL_STORAGE_URL"].startswith(f"s3://{bucket}/")


def test_nginx_service_uses_the_deploy_config(compose: dict[str, Any]) -> None:
    nginx = compose["services"]["nginx"]
    assert "./nginx/shoal.conf:/etc/nginx/conf.d/default.conf:ro" in nginx["volumes"]
    assert (DEPLOY / "nginx" / "shoal.conf").is_file()
    assert {"80:80", "443:443"} <= set(nginx["ports"])
    conf = (DEPLOY / "nginx" / "shoal.conf").read_text()
    assert "server web:9000" in conf and "http://minio:9000/shoal/" in conf


def test_env_example_has_every_setting() -> None:
    documented = env_example()
    missing = [env_name(name) for name in Settings.model_fields if env_name(name) not in documented]
    assert not missing, f"not in deploy/.env.example: {missing}; run `python deploy/make-env-example.py`"


def test_env_example_values_load_as_valid_settings(compose: dict[str, Any]) -> None:
    env = active_env()
    values = {k.removeprefix("SHOAL_").lower(): v for k, v in env.items() if k.startswith("SHOAL_")}
    settings = load_settings(**values)
    assert settings.workers_mode == "external" and not settings.is_sqlite
    assert settings.trust_proxy
    # every ${VAR} the compose file substitutes is defined in the example
    text = (DEPLOY / "docker-compose.yml").read_text()
    needed = set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)", text))
    assert needed and needed <= set(env), needed - set(env)
    assert env["POSTGRES_PASSWORD"] in env["SHOAL_DATABASE_URL"]
    assert env["MINIO_ROOT_PASSWORD"] == env["SHOAL_S3_SECRET_KEY"]


def test_dockerfile_has_ffmpeg_a_non_root_user_and_a_healthcheck() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"apt-get install[^\n]*ffmpeg", text)
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK[\s\S]*?/api/v1/config", text, re.MULTILINE)
    for folder in ("instance", "migrations", "federation", "p2p", "webui", "transcoding"):
        assert f"COPY {folder} " in text
    assert "npm ci" in text and "COPY --from=webui /webui/static/dist ./webui/static/dist" in text
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert {".venv", "webui/node_modules", "deploy/.env"} <= set(ignored)


@pytest.mark.parametrize(
    "unit", ["shoal-web@.service", "shoal-worker@.service", "shoal-seeder.service", "shoal-migrate.service"]
)
def test_systemd_units(unit: str) -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((DEPLOY / "systemd" / unit).read_text())
    service = parser["Service"]
    assert service["User"] == "shoal"
    assert service["EnvironmentFile"] == "/etc/shoal/shoal.env"
    command = service["ExecStart"].split()
    assert command[0] == "/opt/shoal/.venv/bin/shoal"
    expected = {"shoal-web@.service": "serve", "shoal-worker@.service": "worker",
                "shoal-seeder.service": "seeder", "shoal-migrate.service": "db"}[unit]  # fmt: skip
    assert command[1] == expected
    assert service["ProtectSystem"] == "strict" and service["ReadWritePaths"] == "/var/lib/shoal"
    if unit == "shoal-web@.service":
        assert service["Environment"] == "SHOAL_LISTEN=127.0.0.1:%i"
