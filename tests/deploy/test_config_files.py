"""The deployment files agree with each other and with ``dotenv``.

Every variable the compose files interpolate and every environment variable named in
gunicorn.conf.py, bin/start, the Dockerfile and nginx.conf is documented in ``dotenv``; nginx lets
through the largest upload the API accepts; nothing generates migrations or runs the dev server.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess

import pytest
import yaml

from tests.support.processes import REPO

COMPOSE_FILES = ["compose.yaml", "compose-prod.yml"]
# Set in the Dockerfile for Python and pip themselves, not read by mediastore.
NOT_OURS = {
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONUNBUFFERED",
    "PIP_NO_CACHE_DIR",
    "PIP_DISABLE_PIP_VERSION_CHECK",
}


def read(name: str) -> str:
    return (REPO / name).read_text(encoding="utf-8")


def documented() -> dict[str, str]:
    """``NAME=value`` lines of dotenv, commented-out ones included."""
    found = {}
    for line in read("dotenv").splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$", line.strip())
        if match:
            found[match.group(1)] = match.group(2).strip()
    return found


def interpolated(text: str) -> set[str]:
    """``${VAR}``, ``${VAR:-x}``, ``${VAR:?x}`` and ``$VAR``, but not the escaped ``$$VAR``."""
    return set(re.findall(r"(?<!\$)\$\{?([A-Za-z_][A-Za-z0-9_]*)", text))


def python_env_names(source: str) -> set[str]:
    """First string arguments of env.get_*/os.environ.get/os.getenv calls and os.environ[...] keys."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if (
                node.func.attr in {"get", "getenv", "get_str", "get_int", "get_bool", "get_list"}
                and node.args
            ):
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value.isupper():
                    names.add(arg.value)
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            if isinstance(node.slice.value, str) and node.slice.value.isupper():
                names.add(node.slice.value)
    return names


def dockerfile_env_names(text: str) -> set[str]:
    names = interpolated(text)
    for block in re.findall(r"^ENV\s+((?:.*\\\n)*.*)$", text, flags=re.MULTILINE):
        names |= set(re.findall(r"([A-Z][A-Z0-9_]*)=", block))
    names |= set(re.findall(r"environ\.get\('([A-Z][A-Z0-9_]*)'", text))
    return names - NOT_OURS


def uppercase_names(text: str) -> set[str]:
    """Names like SSL_CERT or MEDIASTORE_MAX_UPLOAD_MB (nginx's own $variables are lowercase)."""
    return set(re.findall(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b", text))


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_compose_files_parse_and_interpolate_only_documented_variables(name):
    text = read(name)
    config = yaml.safe_load(text)
    assert "api" in config["services"]
    missing = interpolated(text) - set(documented())
    assert not missing, f"{name} uses variables not documented in dotenv: {sorted(missing)}"


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_api_environment_in_compose_is_documented(name):
    environment = yaml.safe_load(read(name))["services"]["api"].get("environment", {})
    missing = set(environment) - set(documented())
    assert not missing, f"{name} sets api variables not documented in dotenv: {sorted(missing)}"


@pytest.mark.parametrize(
    "name,names_in",
    [
        ("gunicorn.conf.py", python_env_names),
        ("bin/start", interpolated),
        ("Dockerfile", dockerfile_env_names),
        ("nginx.conf", uppercase_names),
    ],
)
def test_environment_variables_named_in_deployment_files_are_documented(name, names_in):
    names = names_in(read(name))
    missing = names - set(documented())
    assert not missing, f"{name} names variables not documented in dotenv: {sorted(missing)}"


def test_the_checks_above_see_the_variables_they_should():
    """Guards the extractors: a regex that finds nothing would make the checks above vacuous."""
    assert {
        "WEB_CONCURRENCY",
        "GUNICORN_BIND",
        "GUNICORN_TIMEOUT",
        "MEDIASTORE_REDIS_URL",
    } <= python_env_names(read("gunicorn.conf.py"))
    assert {"WEB_CONCURRENCY"} <= interpolated(read("bin/start"))
    assert {"MEDIASTORE_DATA_DIR", "DJANGO_STATIC_ROOT", "DJANGO_ALLOWED_HOSTS"} <= dockerfile_env_names(
        read("Dockerfile")
    )
    assert {"SSL_CERT", "SSL_KEY", "MEDIASTORE_MAX_UPLOAD_MB"} <= uppercase_names(read("nginx.conf"))
    assert {"SSL_CERT", "SSL_KEY", "MEDIASTORE_IMAGE", "POSTGRES_PASSWORD"} <= interpolated(
        read("compose-prod.yml")
    )
    assert "POSTGRES_USER" not in interpolated("test: pg_isready -U $$POSTGRES_USER")


def _size_in_bytes(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kKmMgG]?)", value).groups()
    return int(number) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[unit.lower()]


def test_nginx_body_limit_lets_the_largest_base64_upload_through():
    """base64 inflates bytes by 4/3: nginx's default 1 MB limit refused uploads the API accepts.
    The raw streams have no limit at all (0), in their own location."""
    text = read("nginx.conf")
    limits = re.findall(r"^\s*client_max_body_size\s+(\S+);", text, flags=re.MULTILINE)
    assert sorted(limits) == ["0", "700m"]
    max_upload_mb = int(documented()["MEDIASTORE_MAX_UPLOAD_MB"])
    assert _size_in_bytes("700m") >= max_upload_mb * (1 << 20) * 4 / 3
    content = re.search(r"location ~ \^/api/media/\.\+/content\$ \{([^}]*)\}", text)
    assert content and "client_max_body_size 0;" in content.group(1)


def test_nginx_proxies_with_the_headers_django_trusts_and_streams_large_bodies():
    text = read("nginx.conf")
    for directive in [
        "proxy_set_header X-Forwarded-Proto $scheme;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_set_header X-Forwarded-Host $http_host;",
        "proxy_buffering off;",
        "return 301 https://$host$mediastore_https_port_suffix$request_uri;",
        "set $mediastore_https_port 443;",
        "root /var/www/letsencrypt;",
        "set $mediastore_hsts_max_age 31536000;",
    ]:
        assert directive in text
    # The shape tests/deploy/test_nginx_e2e.py substitutes (and compose-prod.yml mounts).
    assert text.count("server api:8000;") == 1
    assert re.search(r"^\s*listen 80;$", text, flags=re.MULTILINE)
    assert re.search(r"^\s*listen 443 ssl;$", text, flags=re.MULTILINE)
    assert "/etc/nginx/certs/cert.pem;" in text and "/etc/nginx/certs/key.pem;" in text
    assert "alias /srv/static/;" in text


def test_nginx_passes_a_request_to_another_host_only_where_it_may_run_twice():
    """Several API hosts (docs/scaling.md): nginx's default passes PUT and DELETE on to the next
    host even after the first got them; here they go through a location that never does, and
    nothing allows non-idempotent requests to be sent twice."""
    text = read("nginx.conf")
    upstream = re.search(r"upstream mediastore_api \{([^}]*)\}", text)
    assert upstream and upstream.group(1).strip() == "server api:8000;"
    assert re.search(r"^    proxy_next_upstream error timeout;$", text, flags=re.MULTILINE)
    assert "non_idempotent" not in text
    root = re.search(r"location / \{\n        # nginx counts PUT(.*?)\n    \}", text, flags=re.DOTALL)
    assert root and "error_page 418 = @once;" in root.group(1)
    assert "if ($request_method ~ ^(PUT|DELETE)$) {" in root.group(1)
    once = re.search(r"location @once \{([^}]*)\}", text)
    assert once and "proxy_next_upstream off;" in once.group(1)
    services = yaml.safe_load(read("compose-prod.yml"))["services"]
    assert services["api"]["deploy"]["replicas"] == "${MEDIASTORE_API_REPLICAS:-1}"
    assert services["api"]["environment"]["MEDIASTORE_HOSTS"] == "${MEDIASTORE_API_REPLICAS:-1}"


def test_nginx_buffers_request_bodies_except_the_raw_content_stream():
    """Regression: ``proxy_request_buffering off`` everywhere passed slow bodies through to gunicorn,
    where 40 slow logins held every thread. Only the raw byte stream may skip nginx's buffer, and
    nginx itself cuts off a body that stops arriving."""
    text = read("nginx.conf")
    content = re.search(r"location ~ \^/api/media/\.\+/content\$ \{([^}]*)\}", text)
    assert content and "proxy_request_buffering off;" in content.group(1)
    elsewhere = text.replace(content.group(0), "")
    assert "proxy_request_buffering off;" not in elsewhere
    assert re.search(r"^\s*proxy_request_buffering on;$", elsewhere, flags=re.MULTILINE)
    timeout = re.search(r"^\s*client_body_timeout (\d+)s;$", elsewhere, flags=re.MULTILINE)
    assert timeout and int(timeout.group(1)) <= int(documented()["MEDIASTORE_BODY_TIMEOUT_S"])


def _commands(config: dict) -> list[str]:
    found = []
    for service in config["services"].values():
        for field in ("command", "entrypoint"):
            value = service.get(field)
            if value:
                found.append(" ".join(value) if isinstance(value, list) else value)
    return found


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_compose_files_never_run_the_dev_server_or_generate_migrations(name):
    text = read(name)
    for word in ("runserver", "makemigrations"):
        assert word not in text
        assert not any(word in command for command in _commands(yaml.safe_load(text)))


def test_start_script_migrates_and_execs_gunicorn_but_never_makes_migrations():
    text = read("bin/start")
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    assert "makemigrations" not in text and "runserver" not in text
    # start_steps: migrate --noinput, the two accounts, collectstatic (tests/test_commands.py).
    steps = [
        "python manage.py start_steps\n",
        "exec gunicorn -c gunicorn.conf.py mediastore.wsgi",
    ]
    positions = [text.index(step) for step in steps]
    assert positions == sorted(positions)
    assert (REPO / "bin" / "start").stat().st_mode & 0o111, "bin/start must be executable"
    subprocess.run(["bash", "-n", str(REPO / "bin" / "start")], check=True)


def test_dockerfile_runs_the_start_script_as_a_non_root_user_with_a_health_check():
    text = read("Dockerfile")
    assert text.startswith("# ") and "FROM python:3.11-slim" in text
    assert 'CMD ["bin/start"]' in text
    assert re.search(r"^USER (?!root)\S+", text, flags=re.MULTILINE)
    assert "/api/health" in text and "HEALTHCHECK" in text
    assert text.index("COPY pyproject.toml") < text.index("pip install") < text.index("COPY . .")
    assert "collectstatic --noinput" in text
    assert 'VOLUME ["/data"]' in text
    # The HEALTHCHECK command is a JSON list: a broken quote would silently make it a shell string.
    health = re.search(r"^\s*CMD (\[\"python\".*\])$", text, flags=re.MULTILINE)
    assert health and json.loads(health.group(1))[:2] == ["python", "-c"]


def test_prod_compose_runs_everything_with_restart_policies_and_healthchecks():
    services = yaml.safe_load(read("compose-prod.yml"))["services"]
    assert set(services) >= {"api", "db", "redis", "nginx"}
    assert services["db"]["image"].startswith("postgres:17")
    for name, service in services.items():
        assert service.get("restart") in {"always", "unless-stopped"}, name
        assert name == "api" or "healthcheck" in service, f"{name} has no healthcheck"  # api: the image's
    assert "ports" not in services["api"], "only nginx should be reachable from outside"
    assert services["replicate"]["command"] == ["python", "manage.py", "replicate"]
    assert "data:/data" in services["replicate"]["volumes"] and "data:/data" in services["api"]["volumes"]
    assert services["webhooks"]["command"] == ["python", "manage.py", "deliver_webhooks"]
    assert services["webhooks"]["environment"]["POSTGRES_HOST"] == "db"
    assert services["api"]["environment"]["MEDIASTORE_REDIS_URL"].startswith(
        "${MEDIASTORE_REDIS_URL:-redis://"
    )


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_image():
    lines = set(read(".dockerignore").split())
    assert {".env", ".git", "data"} <= lines


def test_every_events_variable_is_in_dotenv_and_set_where_compose_prod_runs_it():
    """The change-event settings (MEDIASTORE_EVENTS_*, MEDIASTORE_AMQP_*): all in dotenv; the
    relay service gets every AMQP one, the api (where prune_events runs) the retention and the
    broker URL (with a broker set, pruning keeps what the relay has not published)."""
    events = ("MEDIASTORE_EVENTS_", "MEDIASTORE_AMQP_")
    names = {name for name in python_env_names(read("mediastore/settings.py")) if name.startswith(events)}
    assert names >= {
        "MEDIASTORE_EVENTS_RETENTION_DAYS",
        "MEDIASTORE_AMQP_URL",
        "MEDIASTORE_AMQP_EXCHANGE",
        "MEDIASTORE_AMQP_EXCHANGE_DURABLE",
    }
    assert names <= set(documented())
    services = yaml.safe_load(read("compose-prod.yml"))["services"]
    assert {name for name in names if name.startswith("MEDIASTORE_AMQP_")} <= set(
        services["relay"]["environment"]
    )
    assert {"MEDIASTORE_EVENTS_RETENTION_DAYS", "MEDIASTORE_AMQP_URL"} <= set(services["api"]["environment"])
    assert services["relay"]["command"] == ["python", "manage.py", "relay_events"]
