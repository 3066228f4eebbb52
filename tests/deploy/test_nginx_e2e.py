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
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import time
import uuid

import pytest
import requests

from tests.support.nginx import mime_types, substitute, wrap
from tests.support.ports import free_port
from tests.support.processes import REPO, Process, fetch, http_ok, new_session
from tests.support.servers import (
    ADMIN_USER,
    PASSWORD,
    ThrowAwayDatabase,
    login,
    make_workdir,
    remove_workdir,
    request_from,
    require_operations,
    server_env,
    skip_or_fail,
    start_app,
)

pytestmark = pytest.mark.e2e

# MEDIASTORE_MAX_UPLOAD_MB of the server behind nginx: small, so that streams well over it are quick.
CAP_MB = 4
# MEDIASTORE_ANON_BODY_TIMEOUT_S of the server behind nginx: short, so that a slow body shows.
ANON_BODY_TIMEOUT_S = 3


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
        MEDIASTORE_ANON_BODY_TIMEOUT_S=str(ANON_BODY_TIMEOUT_S),
        MEDIASTORE_LOG_FORMAT="json",
        # docs/production.md's HTTPS settings: everything below also works with them.
        DJANGO_SECURE_SSL_REDIRECT="true",
        DJANGO_SECURE_HSTS_SECONDS="31536000",
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
            + [
                "-addext",
                "subjectAltName=DNS:localhost,IP:127.0.0.1",
                "-keyout",
                str(key),
                "-out",
                str(cert),
            ],
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
            acme=workdir / "acme",
        )
        challenges = workdir / "acme" / ".well-known" / "acme-challenge"
        challenges.mkdir(parents=True)
        (challenges / "token-123").write_text("token-123.thumbprint")
        for path in (challenges, *challenges.parents):
            if path == workdir:
                break
            path.chmod(0o755)  # nginx's workers run as nobody when the tests run as root
        (challenges / "token-123").chmod(0o644)
        conf = prefix / "nginx.conf"
        conf.write_text(wrap(server_blocks, prefix, mime_types(nginx)))
        test = subprocess.run(
            [nginx, "-t", "-p", str(prefix), "-c", str(conf)], capture_output=True, text=True
        )
        assert test.returncode == 0, test.stderr
        proxy = Process("nginx", [nginx, "-p", str(prefix), "-c", str(conf)], env, workdir / "nginx.log")
        base = f"https://localhost:{https_port}"
        proxy.wait_until(lambda: http_ok(f"{base}/api/health", verify=str(cert)), timeout=30)
        yield {
            "base": base,
            "direct": f"http://127.0.0.1:{app_port}",
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


def test_plain_http_redirects_to_https_keeping_a_port_other_than_443(stack):
    """Regression: the redirect went to https://localhost/..., port 443, where nothing listened."""
    response = fetch(f"{stack['plain']}/api/media/x?y=1", allow_redirects=False, timeout=10)
    assert response.status_code == 301
    assert response.headers["Location"] == f"https://localhost:{stack['https_port']}/api/media/x?y=1"


def test_acme_challenges_are_served_over_plain_http_for_renewals(stack):
    response = fetch(f"{stack['plain']}/.well-known/acme-challenge/token-123", allow_redirects=False)
    assert response.status_code == 200
    assert response.text == "token-123.thumbprint"
    missing = fetch(f"{stack['plain']}/.well-known/acme-challenge/nope", allow_redirects=False)
    assert missing.status_code == 404


@pytest.mark.parametrize("path", ["/api/health", "/api/media/nothing-here", "/static/admin/css/base.css"])
def test_hsts_and_nosniff_once_on_every_https_answer(stack, path):
    """nginx adds both headers to API answers (errors included) and to the static files it serves
    itself; the API's own copies are hidden, so each header comes once."""
    from urllib.parse import urlsplit

    import urllib3

    pool = urllib3.HTTPSConnectionPool(
        "localhost", urlsplit(stack["base"]).port, ca_certs=stack["verify"], cert_reqs="CERT_REQUIRED"
    )
    try:
        response = pool.request("GET", path, retries=False, redirect=False)
    finally:
        pool.close()
    assert response.status in {200, 401, 404}, (path, response.status)
    assert response.headers.getlist("Strict-Transport-Security") == ["max-age=31536000; includeSubDomains"]
    assert response.headers.getlist("X-Content-Type-Options") == ["nosniff"]


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


def test_a_slow_login_body_is_collected_by_nginx_before_gunicorn_sees_it(stack):
    """Regression: with ``proxy_request_buffering off`` nginx passed slow bodies on to gunicorn as
    they came, and 40 slow logins held every thread there. nginx now reads a login body whole
    first: one sent over 5 s, longer than the server's MEDIASTORE_ANON_BODY_TIMEOUT_S (3 s here),
    reaches the API at once and whole (401 for its wrong password, not 408)."""
    body = json.dumps({"username": f"nobody-{uuid.uuid4().hex[:8]}", "password": "wrong"}).encode()
    head = (
        "POST /api/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    context = ssl.create_default_context(cafile=stack["verify"])
    with socket.create_connection(("localhost", stack["https_port"]), timeout=30) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(head + body[:10])
            for start in (10, 20):
                time.sleep(2.5)
                tls.sendall(body[start : start + 10 if start == 10 else len(body)])
            answer = b""
            while chunk := tls.recv(4096):
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 401"), answer[:500]


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


def json_log_lines(stack, marker: str, count: int = 2) -> list[dict]:
    """gunicorn's JSON log lines (MEDIASTORE_LOG_FORMAT=json) whose message names ``marker``, once
    ``count`` are there."""
    return [json.loads(line) for line in stack["app"].lines_naming(marker, count, prefix="{")]


def by_logger(lines: list[dict]) -> dict[str, dict]:
    return {line["logger"]: line for line in lines}


def test_the_real_client_address_through_nginx_in_access_log_and_warnings(stack):
    """The client connects to nginx from 127.0.0.5; nginx (127.0.0.1, a trusted proxy) appends
    that to X-Forwarded-For. A value the client sent itself is not taken."""
    marker = f"via-nginx-{uuid.uuid4().hex}"
    https = f"https://127.0.0.1:{stack['https_port']}/api/media/{marker}"
    status = request_from("127.0.0.5", https, headers={"X-Forwarded-For": "6.6.6.6"}, cafile=stack["verify"])
    assert status == 401
    lines = by_logger(json_log_lines(stack, marker))
    access, warning = lines["gunicorn.access"], lines["django.request"]
    assert (access["client"], access["status"], access["path"]) == (
        "127.0.0.5",
        "401",
        f"/api/media/{marker}",
    )
    assert access["message"].startswith("127.0.0.5 - ")
    assert warning["message"] == f"Unauthorized: /api/media/{marker}"
    assert (warning["client"], warning["status_code"], warning["level"]) == ("127.0.0.5", 401, "WARNING")


def test_a_spoofed_x_forwarded_for_sent_straight_to_gunicorn_is_not_believed(stack):
    """Plain HTTP straight to gunicorn is redirected to https (DJANGO_SECURE_SSL_REDIRECT); the
    access line names the real peer, not the header's address. (Django's warnings with a spoofed
    header: tests/deploy/test_client_address_logs.py.)"""
    marker = f"direct-{uuid.uuid4().hex}"
    status = request_from(
        "127.0.0.7", f"{stack['direct']}/api/media/{marker}", headers={"X-Forwarded-For": "203.0.113.66"}
    )
    assert status == 301
    [access] = json_log_lines(stack, marker, count=1)
    assert (access["logger"], access["client"], access["status"]) == ("gunicorn.access", "127.0.0.7", "301")


def test_health_over_plain_http_is_not_redirected(stack):
    """Health checks (the image's HEALTHCHECK, load balancers) ask gunicorn over plain HTTP."""
    response = fetch(f"{stack['direct']}/api/health", allow_redirects=False, timeout=10)
    assert response.status_code == 200


def test_gunicorn_and_django_log_only_json_lines(stack):
    """Everything after bin/start's own steps (migrate, collectstatic print text) is JSON: one
    object per line with time, level, logger and message."""
    marker = f"json-{uuid.uuid4().hex}"
    https = f"https://127.0.0.1:{stack['https_port']}/api/media/{marker}"
    assert request_from("127.0.0.5", https, cafile=stack["verify"]) == 401
    json_log_lines(stack, marker)  # both lines written
    log = stack["app"].log()
    served = log[log.index('{"time"') :].splitlines()
    records = [json.loads(line) for line in served]
    loggers = {record["logger"] for record in records}
    assert {"gunicorn.error", "gunicorn.access", "django.request"} <= loggers, loggers
    for record in records:
        assert {"time", "level", "logger", "message", "pid"} <= set(record), record
