"""The examples Swagger UI fills in work: sent as they are, in turn, to a new server after the
README's "First steps", every operation answers 2xx.

Regression (issue 33): the examples were placeholders built from the schemas (`"string"`), so
the search example silently found nothing (`[]`) and the upload example was a 422. The examples
are in ``mediastore/examples.py``; this test reads them from the live OpenAPI document, as Swagger
UI does, and fails for an operation that is neither tried here nor excluded below with a reason.
"""

from __future__ import annotations

import shlex
from urllib.parse import quote

import pytest

from tests.support.processes import REPO, fetch
from tests.support.servers import PASSWORD, SERVICE_USER, Server

pytestmark = pytest.mark.e2e

# The order a reader would go in: each kind of object made before it is read, changed and deleted.
ORDER = [
    "POST /api/login",
    "GET /api/hello",
    "GET /api/health",
    "POST /api/tokens",
    "GET /api/tokens",
    "DELETE /api/tokens/{id}",
    "POST /api/identifier",
    "GET /api/identifier/list",
    "GET /api/identifier/{name}",
    "PUT /api/identifier",
    "DELETE /api/identifier/{name}",
    "POST /api/s3cfg",
    "GET /api/s3cfgs",
    "GET /api/s3cfg/{pk}",
    "PUT /api/s3cfg/{pk}",
    "DELETE /api/s3cfg/{pk}",
    "POST /api/store",
    "GET /api/stores",
    "GET /api/store/{pk}",
    "PATCH /api/store/{pk}",
    "DELETE /api/store/{pk}",
    "POST /api/upload",
    "POST /api/upload/{pid}/complete",
    "GET /api/download/{pid}",
    "POST /api/download/urls",
    "POST /api/download/archive",
    "GET /api/download/archive",
    "PUT /api/media/{pid}/content",
    "GET /api/media/{pid}/content",
    "GET /api/media/{pid}/verify",
    "POST /api/media/{pid}/replicas",
    "GET /api/media/{pid}/replicas",
    "DELETE /api/media/{pid}/replicas/{store_pk}",
    "POST /api/rules",
    "GET /api/rules",
    "DELETE /api/rules/{name}",
    "POST /api/media",
    "POST /api/media/create",
    "POST /api/media/read",
    "GET /api/media",
    "GET /api/media/dump",
    "PATCH /api/media/update",
    "PATCH /api/media/update/tags",
    "PUT /api/media/update/tags",
    "PUT /api/media/update/storekeys",
    "PUT /api/media/update/identifiers",
    "PUT /api/media/update/metadata",
    "PATCH /api/media/update/metadata",
    "DELETE /api/media/update/metadata",
    "POST /api/media/search",
    "GET /api/media/{pid}/history",
    "POST /api/media/{pid}/revert",
    "GET /api/media/{pid}",
    "POST /api/media/{pid}/hold",
    "DELETE /api/media/{pid}/hold",
    "PATCH /api/media/{pid}",
    "DELETE /api/media/{pid}",
    "GET /api/trash",
    "POST /api/trash/{pid}/restore",
    "POST /api/media/delete",
    "POST /api/trash/restore",
    "DELETE /api/trash/{pid}",
    "PUT /api/quotas",
    "GET /api/quotas",
    "GET /api/usage",
    "GET /api/webhooks",
    "GET /api/events",
    "GET /api/stats",
    "POST /api/logout",  # last: it revokes the token every call here presents
]
EXCLUDED = {
    # A presigned GET needs a BucketStore, i.e. an S3 endpoint, which the first steps do not make;
    # tests/content covers it against moto.
    "GET /api/download/url/{pid}": "BucketStore only",
    # Only a GOOD replica can become the primary: the replication worker must have copied it first
    # (tests/content/test_replicas.py covers it).
    "POST /api/media/{pid}/replicas/{store_pk}/promote": "needs the replication worker",
    # S3 direct multipart uploads need a BucketStore too; tests/content/test_multipart.py covers them
    # against moto (abandoning one included, which needs a PENDING media of its own).
    "POST /api/upload/{pid}/parts": "BucketStore only",
    "DELETE /api/upload/{pid}": "needs a PENDING media of its own",
    # The demo media's bytes are application/octet-stream, which has no preview (415);
    # tests/content/test_previews.py covers images and text.
    "GET /api/media/{pid}/preview": "the demo media has no preview",
    # A webhook's URL must be a public https address that resolves, which a machine of the first
    # steps may not reach; tests/events/test_webhooks.py covers these against a loopback receiver.
    "POST /api/webhooks": "needs a public receiver",
    "GET /api/webhooks/{id}": "needs a public receiver",
    "PATCH /api/webhooks/{id}": "needs a public receiver",
    "DELETE /api/webhooks/{id}": "needs a public receiver",
    "GET /api/webhooks/{id}/deliveries": "needs a public receiver",
    "POST /api/webhooks/{id}/test": "needs a public receiver",
    "POST /api/webhooks/{id}/redeliver": "needs a public receiver",
    "POST /api/webhooks/{id}/secret": "needs a public receiver",
}


def first_steps() -> list[tuple[str, str, str | None]]:
    """(method, path, JSON body) of each API call in the README's "First steps" block but the login,
    in order, as its curl commands make them."""
    text = (REPO / "README.md").read_text().split("\n## First steps", 1)[1]
    block = text.split("```sh\n", 1)[1].split("```", 1)[0]
    calls = []
    for args in _commands(block):
        if args[0] != "curl":
            continue
        url = next(a for a in args if a.startswith("$MS/api/"))  # the server's address, one variable
        path = url.removeprefix("$MS")
        body = args[args.index("-d") + 1] if "-d" in args else None
        method = args[args.index("-X") + 1] if "-X" in args else ("POST" if body else "GET")
        if path != "/api/login":
            calls.append((method, path, body))
    assert [c[:2] for c in calls][:4] == [
        ("POST", "/api/identifier"),
        ("POST", "/api/identifier"),
        ("POST", "/api/store"),
        ("POST", "/api/upload"),
    ], calls
    return calls


def _commands(block: str):
    """The shell commands of ``block`` as argument lists (a quoted body may span lines)."""
    pending = ""
    for line in block.splitlines():
        pending += line + "\n"
        try:
            args = shlex.split(pending, comments=True)
        except ValueError:  # an open quote: the command goes on in the next line
            continue
        pending = ""
        if args:
            yield args


@pytest.fixture(scope="module")
def server():
    server = Server("mediastore-examples-", 1)
    try:
        yield server
    finally:
        server.close()


def test_every_example_request_answers_2xx_after_the_first_steps(server):
    base, session = server.base, server.session
    for method, path, body in first_steps():
        response = session.request(
            method, f"{base}{path}", data=body, headers={"Content-Type": "application/json"}, timeout=30
        )
        assert response.status_code == 200, f"README first step {method} {path}: {response.text}"

    doc = fetch(f"{base}/api/openapi.json", timeout=30).json()
    operations = {
        f"{method.upper()} {path}": operation
        for path, item in doc["paths"].items()
        for method, operation in item.items()
    }
    assert set(ORDER) | set(EXCLUDED) == set(operations), "place new operations in ORDER (or EXCLUDED)"
    assert len(ORDER) == len(set(ORDER))

    failures = []
    made: dict[str, object] = {}  # what earlier answers gave that no example can know
    for name in ORDER:
        method, path = name.split()
        operation = operations[name]
        kwargs: dict = {}
        body = operation.get("requestBody")
        if body is not None:
            (media_type, content), *_ = body["content"].items()
            assert "example" in content, f"{name}: no example body"
            example = content["example"]
            if name == "POST /api/login":
                # The example names the README's account; the password is each site's own.
                assert set(example) == {"username", "password"}, example
                example = {"username": SERVICE_USER, "password": PASSWORD}
            if media_type == "application/json":
                kwargs["json"] = example
            else:
                kwargs["data"] = example.encode()
                kwargs["headers"] = {"Content-Type": media_type}
        values = {}
        for parameter in operation.get("parameters", []):
            if parameter["in"] != "path":
                assert not parameter.get("required"), f"{name}: a required {parameter['in']} parameter"
                continue
            if name == "DELETE /api/tokens/{id}":  # a token's id is the site's own: the one just made
                values[parameter["name"]] = made["token id"]
                continue
            assert "example" in parameter, f"{name}: no example for {parameter['name']}"
            values[parameter["name"]] = parameter["example"]
        # As Swagger UI sends them: each path parameter percent-encoded (a pid's "/" as %2F).
        url = base + path.format(**{key: quote(str(value), safe="") for key, value in values.items()})
        response = session.request(method, url, timeout=60, **kwargs)
        json_answer = response.content and "json" in response.headers.get("Content-Type", "")
        answer = response.json() if json_answer else None
        if not 200 <= response.status_code < 300:
            failures.append(f"{name}: {response.status_code} {response.text[:300]}")
        elif isinstance(answer, dict) and answer.get("failures"):
            failures.append(f"{name}: 200 with failures {answer['failures']}")
        elif name in ("POST /api/media/search", "POST /api/media/read") and not answer:
            failures.append(f"{name}: found nothing")
        if name == "POST /api/tokens" and response.status_code == 201:
            made["token id"] = answer["id"]
    assert not failures, "\n".join(failures)
