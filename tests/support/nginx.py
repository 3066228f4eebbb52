"""The repo's nginx.conf run by a non-root nginx in a temporary prefix, for the live tests:
``substitute`` replaces only addresses, ports, certificate paths, the static root and the ACME
webroot (as docs/production.md tells an operator to), ``wrap`` adds what the official image's
nginx.conf provides, ``self_signed`` makes a certificate for localhost, and ``start_nginx`` runs it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.support.processes import Process, http_ok


def mime_types(nginx: str) -> str:
    """The mime.types file next to nginx's own configuration file."""
    info = subprocess.run([nginx, "-V"], capture_output=True, text=True).stderr
    match = re.search(r"--conf-path=(\S+)", info)
    candidates = [Path(match.group(1)).parent / "mime.types"] if match else []
    candidates.append(Path("/etc/nginx/mime.types"))
    for path in candidates:
        if path.is_file():
            return f"include {path};"
    return (
        "types { text/html html; text/css css; application/javascript js; image/png png; image/svg+xml svg; }"
    )


def substitute(
    conf: str,
    *,
    upstream: str,
    http_port: int,
    https_port: int,
    cert: Path,
    key: Path,
    static: Path,
    acme: Path,
) -> str:
    """The repo's nginx.conf with only addresses, ports, cert paths, static root and ACME webroot
    replaced, as docs/production.md tells an operator to (the HTTPS port too, being other than 443)."""
    replacements = [
        ("set $mediastore_https_port 443;", f"set $mediastore_https_port {https_port};"),
        ("root /var/www/letsencrypt;", f"root {acme};"),
        ("server api:8000;", upstream if upstream.startswith("server ") else f"server {upstream};"),
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;"),
        ("/etc/nginx/certs/cert.pem;", f"{cert};"),
        ("/etc/nginx/certs/key.pem;", f"{key};"),
        ("alias /srv/static/;", f"alias {static}/;"),
    ]
    for old, new in replacements:
        assert conf.count(old) == 1, f"nginx.conf should contain {old!r} exactly once"
        conf = conf.replace(old, new)
    return conf


def wrap(server_blocks: str, prefix: Path, mime_types: str) -> str:
    """What the official image's /etc/nginx/nginx.conf provides, for a temp prefix and no root."""
    temp_paths = "\n".join(
        f"    {kind}_temp_path {prefix / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""daemon off;
worker_processes 1;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} info;
events {{}}
http {{
    {mime_types}
    default_type application/octet-stream;
    access_log {prefix / "access.log"};
{temp_paths}

{server_blocks}
}}
"""


def self_signed(workdir: Path) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1 (valid a day) and its key."""
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"]
        # A subjectAltName lets requests verify the certificate (the CN alone is not checked).
        + ["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, key


def start_nginx(
    nginx: str, workdir: Path, upstream: str, env: dict[str, str], *, https_port: int, http_port: int
):
    """nginx.conf with ``upstream`` (``server ...;`` lines or one address) in a prefix under
    ``workdir``; returns the running Process, the HTTPS base URL and the certificate to verify."""
    cert, key = self_signed(workdir)
    prefix = workdir / "nginx"
    prefix.mkdir()
    (prefix / "logs").mkdir()  # nginx opens <prefix>/logs/error.log before reading -c
    (workdir / "acme").mkdir(exist_ok=True)
    server_blocks = substitute(
        (Path(__file__).resolve().parents[2] / "nginx.conf").read_text(),
        upstream=upstream,
        http_port=http_port,
        https_port=https_port,
        cert=cert,
        key=key,
        static=workdir / "static",
        acme=workdir / "acme",
    )
    conf = prefix / "nginx.conf"
    conf.write_text(wrap(server_blocks, prefix, mime_types(nginx)))
    test = subprocess.run([nginx, "-t", "-p", str(prefix), "-c", str(conf)], capture_output=True, text=True)
    assert test.returncode == 0, test.stderr
    proxy = Process("nginx", [nginx, "-p", str(prefix), "-c", str(conf)], env, workdir / "nginx.log")
    base = f"https://localhost:{https_port}"
    proxy.wait_until(lambda: http_ok(f"{base}/api/health", verify=str(cert)), timeout=30)
    return proxy, base, str(cert)
