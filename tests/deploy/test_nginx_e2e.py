"""The production chain end to end: nginx (the repo's nginx.conf, TLS) -> gunicorn (bin/start,
2 workers) -> PostgreSQL (a throw-away database).

nginx.conf is a conf.d-style file (upstream and server blocks, no ``http {}``), as compose-prod.yml
mounts it into the official nginx image. This test wraps it in a generated ``events {} http {}``
for a non-root prefix in a temp directory and substitutes only the upstream address, the listen
ports, the certificate paths and the static root. The certificate is self-signed, made on the spot.

Installs nothing: without ``nginx`` on PATH it skips, unless MEDIASTORE_REQUIRE_E2E is set.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import socket
import ssl
import subprocess
import uuid
from pathlib import Path

import pytest
import requests

from tests.support.ports import free_port
from tests.support.processes import REPO, Process, fetch, http_ok, new_session
from tests.support.servers import (
    ADMIN_USER,
    PASSWORD,
    ThrowAwayDatabase,
    login,
    make_workdir,
    remove_workdir,
    require_operations,
    server_env,
    skip_or_fail,
    start_app,
)

pytestmark = pytest.mark.e2e

# MEDIASTORE_MAX_UPLOAD_MB of the server behind nginx: small, so that streams well over it are quick.
CAP_MB = 4


def _mime_types(nginx: str) -> str:
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
    conf: str, *, upstream: str, http_port: int, https_port: int, cert: Path, key: Path, static: Path
) -> str:
    """The repo's nginx.conf with only addresses, ports, cert paths and static root replaced."""
    replacements = [
        ("server api:8000;", f"server {upstream};"),
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


@pytest.fixture(scope="module")
def stack():
    nginx = shutil.which("nginx")
    if nginx is None:
        skip_or_fail("nginx is not on PATH (apt-get install nginx)")
    database = ThrowAwayDatabase()
    database.create()
    workdir = make_workdir("mediastore-nginx-")
    app_port, http_port, https_port = free_port(), free_port(), free_port()
    env = server_env(
        workdir,
        app_port,
        2,
        DJANGO_USE_X_FORWARDED_HOST="true",
        MEDIASTORE_MAX_UPLOAD_MB=str(CAP_MB),
        **database.env(),
    )
    app = start_app(workdir, env)
    proxy = None
    try:
        app.wait_until(lambda: http_ok(f"http://127.0.0.1:{app_port}/api/health"))
        cert, key = workdir / "cert.pem", workdir / "key.pem"
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=localhost",
            ]
            # A subjectAltName lets requests verify the certificate (the CN alone is not checked).
            + ["-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
            check=True,
            capture_output=True,
        )
        prefix = workdir / "nginx"
        prefix.mkdir()
        (prefix / "logs").mkdir()  # nginx opens <prefix>/logs/error.log before reading -c
        server_blocks = substitute(
            (REPO / "nginx.conf").read_text(),
            upstream=f"127.0.0.1:{app_port}",
            http_port=http_port,
            https_port=https_port,
            cert=cert,
            key=key,
            static=workdir / "static",
        )
        conf = prefix / "nginx.conf"
        conf.write_text(wrap(server_blocks, prefix, _mime_types(nginx)))
        test = subprocess.run(
            [nginx, "-t", "-p", str(prefix), "-c", str(conf)], capture_output=True, text=True
        )
        assert test.returncode == 0, test.stderr
        proxy = Process("nginx", [nginx, "-p", str(prefix), "-c", str(conf)], env, workdir / "nginx.log")
        base = f"https://localhost:{https_port}"
        proxy.wait_until(lambda: http_ok(f"{base}/api/health", verify=str(cert)), timeout=30)
        yield {
            "base": base,
            "plain": f"http://localhost:{http_port}",
            "https_port": https_port,
            "verify": str(cert),
            "app": app,
            "error_log": prefix / "error.log",
        }
    finally:
        if proxy is not None:
            proxy.stop()
        app.stop()
        remove_workdir(workdir)
        database.drop()


@pytest.fixture
def api(stack) -> requests.Session:
    return login(stack["base"], verify=stack["verify"])


def test_plain_http_redirects_to_https(stack):
    response = fetch(f"{stack['plain']}/api/media/x?y=1", allow_redirects=False, timeout=10)
    assert response.status_code == 301
    assert response.headers["Location"] == "https://localhost/api/media/x?y=1"


def test_health_through_nginx(stack):
    response = fetch(f"{stack['base']}/api/health", verify=stack["verify"], timeout=10)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_login_identifier_type_and_store(api, stack):
    base = stack["base"]
    assert (
        api.post(f"{base}/api/identifier", json={"name": "e2e", "pattern": ""}, timeout=30).status_code == 200
    )
    response = api.post(f"{base}/api/store", json={"type": "FilesystemStore", "bucket": "e2e"}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["type"] == "FilesystemStore"


def _static_urls(html: str) -> list[str]:
    return re.findall(r'(?:href|src)="(/static/[^"]+)"', html)


def test_swagger_ui_and_its_assets(stack):
    base, verify = stack["base"], stack["verify"]
    page = fetch(f"{base}/api/docs", verify=verify, timeout=10)
    assert page.status_code == 200
    urls = _static_urls(page.text)
    assert any(u.endswith(".css") for u in urls) and any(u.endswith(".js") for u in urls), urls
    for url in urls:
        asset = fetch(f"{base}{url}", verify=verify, timeout=30)
        assert asset.status_code == 200, url
        assert asset.content, url
        if url.endswith(".css"):
            assert asset.headers["Content-Type"].startswith("text/css")
    schema = fetch(f"{base}/api/openapi.json", verify=verify, timeout=10)
    assert schema.status_code == 200 and "/api/health" in schema.json()["paths"]


def test_admin_login_page_its_css_and_a_login_over_https(stack):
    """Logging in to the admin passes Django's CSRF origin check only if it sees the request as
    https on the host the browser used: X-Forwarded-Proto and the Host headers work."""
    base, verify = stack["base"], stack["verify"]
    session = new_session(verify)
    page = session.get(f"{base}/admin/login/", timeout=10)
    assert page.status_code == 200
    css = [u for u in _static_urls(page.text) if u.startswith("/static/admin/css/")]
    assert css
    for url in css:
        sheet = session.get(f"{base}{url}", timeout=10)
        assert sheet.status_code == 200 and sheet.headers["Content-Type"].startswith("text/css"), url
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    response = session.post(
        f"{base}/admin/login/?next=/admin/",
        data={"csrfmiddlewaretoken": token, "username": ADMIN_USER, "password": PASSWORD, "next": "/admin/"},
        headers={"Referer": f"{base}/admin/login/", "Origin": base},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302, response.text[:2000]
    assert response.headers["Location"] == "/admin/"
    assert session.cookies.get("sessionid")
    assert "Site administration" in session.get(f"{base}/admin/", timeout=10).text


def test_body_over_the_nginx_limit_is_413_from_nginx(stack):
    """Sends only headers announcing 800 MB: nginx answers at once, the API never sees it."""
    context = ssl.create_default_context(cafile=stack["verify"])
    with socket.create_connection(("localhost", stack["https_port"]), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(
                b"POST /api/upload HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                b"Content-Length: 838860800\r\nConnection: close\r\n\r\n"
            )
            answer = tls.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413")


def first_answer(stack, request_head: bytes) -> bytes:
    """Send only a request's head over TLS and return the first bytes nginx answers with."""
    context = ssl.create_default_context(cafile=stack["verify"])
    with socket.create_connection(("localhost", stack["https_port"]), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(request_head)
            return tls.recv(4096)


@pytest.mark.parametrize("pid", ["x", "10.1234/a.b"])
def test_raw_content_stream_has_no_nginx_body_limit(stack, pid):
    """Regression: client_max_body_size 700m also capped PUT /api/media/{pid}/content, which has no
    size limit. Announcing 800 MB with Expect: 100-continue, nginx now says "go on" (100) for the
    content path where it says 413 for a JSON endpoint; nothing more is sent."""
    head = (
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {type}\r\n"
        "Content-Length: 838860800\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
    )
    stream = head.format(method="PUT", path=f"/api/media/{pid}/content", type="application/octet-stream")
    assert first_answer(stack, stream.encode()).startswith(b"HTTP/1.1 100 Continue")
    json_body = head.format(method="POST", path="/api/upload", type="application/json")
    assert first_answer(stack, json_body.encode()).startswith(b"HTTP/1.1 413")


@pytest.fixture(scope="module")
def uploaded(stack):
    """2.5 MB uploaded as base64 through nginx into a FilesystemStore: 3.4 MB of JSON, over nginx's
    default limit of 1 MB and under the server's MEDIASTORE_MAX_UPLOAD_MB."""
    require_operations(
        ("post", "/api/upload"), ("get", "/api/download/{pid}"), ("get", "/api/media/{pid}/content")
    )
    base = stack["base"]
    session = login(base, verify=stack["verify"])
    session.post(f"{base}/api/identifier", json={"name": "e2e", "pattern": ""}, timeout=30)
    data = os.urandom(2560 << 10)
    pid = f"nginx-{uuid.uuid4().hex}"
    body = {
        "mediadata": {
            "pid": pid,
            "pid_type": "e2e",
            "store_config": {"type": "FilesystemStore", "bucket": "e2e"},
        },
        "base64": base64.b64encode(data).decode(),
    }
    response = session.post(f"{base}/api/upload", json=body, timeout=300)
    assert response.status_code == 200, response.text[:2000]
    assert response.json()["status"] == "READY"
    return {"pid": pid, "data": data, "session": session}


def test_base64_download(stack, uploaded):
    response = uploaded["session"].get(f"{stack['base']}/api/download/{uploaded['pid']}", timeout=300)
    assert response.status_code == 200
    assert base64.b64decode(response.json()["base64"]) == uploaded["data"]


def test_streaming_download_whole_and_with_a_range(stack, uploaded):
    url = f"{stack['base']}/api/media/{uploaded['pid']}/content"
    data, session = uploaded["data"], uploaded["session"]
    with session.get(url, stream=True, timeout=300) as response:
        assert response.status_code == 200
        assert int(response.headers["Content-Length"]) == len(data)
        digest = hashlib.sha256()
        for chunk in response.iter_content(1 << 20):
            digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()

    response = session.get(url, headers={"Range": "bytes=100-199"}, timeout=60)
    assert response.status_code == 206
    assert response.content == data[100:200]
    assert response.headers["Content-Range"] == f"bytes 100-199/{len(data)}"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_streaming_upload_through_nginx(stack, uploaded, chunked):
    """PUT of raw bytes, 3 times the server's MEDIASTORE_MAX_UPLOAD_MB (which limits JSON only) and
    far over nginx's default 1 MB body limit. With a Content-Length nginx streams it through; a
    chunked body (no length, which Django cannot read) nginx collects first and passes on with a
    length: either way every byte arrives, and size and checksum are recorded."""
    require_operations(("put", "/api/media/{pid}/content"), ("post", "/api/media"))
    base, session = stack["base"], uploaded["session"]
    pid = f"nginx-put-{uuid.uuid4().hex}"
    created = session.post(
        f"{base}/api/media",
        json={"pid": pid, "pid_type": "e2e", "store_config": {"type": "FilesystemStore", "bucket": "e2e"}},
        timeout=30,
    )
    assert created.status_code == 200, created.text
    data = os.urandom((3 * CAP_MB) << 20)
    body = (data[pos : pos + (1 << 20)] for pos in range(0, len(data), 1 << 20)) if chunked else data
    put = session.put(
        f"{base}/api/media/{pid}/content",
        data=body,
        headers={"Content-Type": "application/octet-stream"},
        timeout=300,
    )
    assert put.status_code == 200, put.text[:2000]
    checksum = "sha256:" + hashlib.sha256(data).hexdigest()
    media = session.get(f"{base}/api/media/{pid}", timeout=30).json()
    assert (media["store_status"], media["size"], media["checksum"]) == ("READY", len(data), checksum)
    back = session.get(f"{base}/api/media/{pid}/content", timeout=120)
    assert back.status_code == 200
    assert hashlib.sha256(back.content).hexdigest() == hashlib.sha256(data).hexdigest()


def test_json_body_over_the_cap_is_still_refused(stack, uploaded):
    """The JSON endpoints keep MEDIASTORE_MAX_UPLOAD_MB: the API answers 413 naming it, through
    nginx, and creates nothing."""
    base, session = stack["base"], uploaded["session"]
    pid = f"nginx-big-{uuid.uuid4().hex}"
    body = {
        "mediadata": {
            "pid": pid,
            "pid_type": "e2e",
            "store_config": {"type": "FilesystemStore", "bucket": "e2e"},
        },
        "base64": base64.b64encode(os.urandom((CAP_MB << 20) * 3 // 4 + 1024)).decode(),
    }
    response = session.post(f"{base}/api/upload", json=body, timeout=120)
    assert response.status_code == 413
    assert f"over the limit of {CAP_MB} MB; raise MEDIASTORE_MAX_UPLOAD_MB" in response.json()["detail"]
    assert session.get(f"{base}/api/media/{pid}", timeout=30).status_code == 404
