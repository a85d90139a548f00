"""Run the real `deploy/nginx/shoal.conf` on loopback: templated for test ports and paths.

Used by the nginx tests, the topology test and `bench/serve.py`. The deploy file stays the
one an admin installs; here its documented placeholders (upstream servers, ports, paths,
the S3 endpoint) are replaced and it is wrapped in a main config whose pid, logs and temp
paths live in a scratch directory, so nginx runs without root.
"""

from __future__ import annotations

import contextlib
import datetime
import getpass
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_CONF = ROOT / "deploy" / "nginx" / "shoal.conf"
NGINX = "/usr/sbin/nginx"


@dataclass
class NginxSite:
    """Where the templated nginx listens and keeps its files."""

    directory: Path
    main_conf: Path
    http_port: int
    https_port: int

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


def self_signed_cert(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A throwaway certificate for ``host`` (and localhost), written as fullchain.pem/privkey.pem."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(host))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    chain, private = directory / "fullchain.pem", directory / "privkey.pem"
    chain.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return chain, private


def render_site(
    text: str,
    *,
    web: list[str],
    http_port: int,
    https_port: int,
    storage_dir: Path,
    tls_dir: Path,
    cache_dir: Path,
    s3_endpoint: str = "127.0.0.1:9",
    bucket: str = "shoal",
) -> str:
    """Replace the placeholders documented at the top of deploy/nginx/shoal.conf."""
    servers = "\n".join(f"    server {address} max_fails=3 fail_timeout=10s;" for address in web)
    text, count = re.subn(r"^    server web:9000 [^\n]*;$", servers, text, flags=re.MULTILINE)
    assert count == 1, "the upstream block changed: update tests/deploy/nginxconf.py"
    text = re.sub(r"^\s*listen \[::\]:\d+[^\n]*\n", "", text, flags=re.MULTILINE)
    text = text.replace("listen 80;", f"listen 127.0.0.1:{http_port};")
    text = text.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    text = text.replace("/var/lib/shoal/storage", str(storage_dir))
    text = text.replace("/etc/nginx/tls/", f"{tls_dir}/")
    text = text.replace("/var/cache/nginx/shoal", str(cache_dir))
    text = text.replace("/var/www/acme", str(cache_dir / "acme"))
    text = text.replace("http://minio:9000/shoal/", f"http://{s3_endpoint}/{bucket}/")
    text = text.replace("Host minio:9000", f"Host {s3_endpoint}")
    text = text.replace(
        "return 301 https://$host$request_uri;", f"return 301 https://$host:{https_port}$request_uri;"
    )
    return text


def main_config(directory: Path, site: Path) -> str:
    """An nginx.conf for an unprivileged run: pid, logs and temp paths under ``directory``."""
    temp = directory / "temp"
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (temp / name).mkdir(parents=True, exist_ok=True)
    user = f"user {getpass.getuser()};\n" if os.geteuid() == 0 else ""
    return (
        f"{user}worker_processes 1;\n"
        "daemon off;\n"
        f"pid {directory}/nginx.pid;\n"
        f"error_log {directory}/error.log warn;\n"
        "events { worker_connections 4096; }\n"
        "http {\n"
        "    access_log off;\n"
        "    default_type application/octet-stream;\n"
        f"    client_body_temp_path {temp}/body;\n"
        f"    proxy_temp_path {temp}/proxy;\n"
        f"    fastcgi_temp_path {temp}/fastcgi;\n"
        f"    uwsgi_temp_path {temp}/uwsgi;\n"
        f"    scgi_temp_path {temp}/scgi;\n"
        f"    include {site};\n"
        "}\n"
    )


def prepare(
    directory: Path,
    *,
    web: list[str],
    storage_dir: Path,
    s3_endpoint: str = "127.0.0.1:9",
    bucket: str = "shoal",
) -> NginxSite:
    """Write the certificate, the templated site and the main config into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    tls = directory / "tls"
    self_signed_cert(tls)
    cache = directory / "cache"
    cache.mkdir(exist_ok=True)
    http_port, https_port = free_port(), free_port()
    site = directory / "shoal.conf"
    site.write_text(
        render_site(
            DEPLOY_CONF.read_text(),
            web=web,
            http_port=http_port,
            https_port=https_port,
            storage_dir=storage_dir,
            tls_dir=tls,
            cache_dir=cache,
            s3_endpoint=s3_endpoint,
            bucket=bucket,
        )
    )
    main = directory / "nginx.conf"
    main.write_text(main_config(directory, site))
    return NginxSite(directory, main, http_port, https_port)


def check_config(site: NginxSite) -> subprocess.CompletedProcess[str]:
    """`nginx -t` on the templated config."""
    return subprocess.run(
        [NGINX, "-t", "-c", str(site.main_conf), "-p", str(site.directory)],
        capture_output=True,
        text=True,
        timeout=30,
    )


@contextlib.contextmanager
def running(site: NginxSite) -> Iterator[subprocess.Popen[bytes]]:
    """nginx in the foreground for the duration of the block."""
    log = (site.directory / "stdout.log").open("ab")
    proc = subprocess.Popen(
        [NGINX, "-c", str(site.main_conf), "-p", str(site.directory)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", site.https_port), 0.5):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                errors = (site.directory / "error.log").read_text(errors="replace")
                raise RuntimeError(f"nginx did not start: {errors[-2000:]}")
            time.sleep(0.05)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
