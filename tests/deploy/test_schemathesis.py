"""Schemathesis over every operation of the live OpenAPI document, against a real gunicorn.

The server runs the way production runs it (``bin/start``, debug off) on the suite's database kind
(a throw-away PostgreSQL database when the suite runs on PostgreSQL, else SQLite), with identifier
types, S3 and store configurations and media (with and without bytes) created first, so that
generated requests reach real objects and not only 404s: half of the generated path parameters and
bodies are steered to those objects (``steer_to_known_objects``), and they are put back before each
operation (``Live.restore``). Every operation gets a bounded number of examples (valid and invalid
input; invalid input includes a missing or mangled Authorization header, hence the 401s), from a
fixed seed, so the run takes about two minutes and fails the same way every time. The checks: no
5xx, every status code documented, the documented content type, and a body matching the documented
schema.

Every generated call carries the service user's bearer token, except ``POST /api/logout``, which
revokes the token it presents: each of its calls gets a token of its own; and ``DELETE
/api/tokens/{id}``, which could revoke the service user's token by its id: its calls carry a token
of another account, whose own tokens are the ids steered to (the service user's are 404 for it).

All traffic stays on 127.0.0.1: S3 configurations point at the moto server of the suite, and a
generated S3 or webhook url the server would accept is rewritten to a closed port of 127.0.0.1
before it is sent (see ``keep_on_loopback``; the server allows webhooks to 127.0.0.1), so the server
never contacts, nor looks up, another host.
"""

from __future__ import annotations

import json
from urllib.parse import quote, urlsplit

import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.config import SchemathesisConfig

from tests.support.ports import free_port
from tests.support.processes import new_session
from tests.support.servers import SERVICE_USER, Server

pytestmark = pytest.mark.e2e

WORKERS = 2
SEED = 20261130
# Examples per operation in the fuzzing phase (valid and invalid input); the examples and coverage
# phases add their own fixed cases. This bounds the module to about two minutes on a 2-core machine.
EXAMPLES = 25
REQUEST_TIMEOUT = 60
LOGOUT = ("POST", "/api/logout")
S3_URL_WRITES = {("POST", "/api/s3cfg"), ("PUT", "/api/s3cfg/{pk}")}
WEBHOOK_URL_WRITES = {("POST", "/api/webhooks"), ("PATCH", "/api/webhooks/{id}")}
LOGOUT_TOKENS = 200
REVOKE = ("DELETE", "/api/tokens/{id}")
TOKEN_OWNER = "schemathesis-token-owner"

CONFIG = {
    "seed": SEED,
    "generation": {"max-examples": EXAMPLES, "database": "none", "deterministic": True},
    # The stateful phase needs links between operations and runs only from the CLI.
    "phases": {"stateful": {"enabled": False}},
    "checks": {
        "enabled": False,
        "not_a_server_error": {"enabled": True},
        "status_code_conformance": {"enabled": True},
        "content_type_conformance": {"enabled": True},
        "response_schema_conformance": {"enabled": True},
    },
    "request-timeout": REQUEST_TIMEOUT,
}


IDENTIFIER_TYPES = {"pidtype": "", "doi": r"10\.\d+/.+", "local": "", "seq": r"[0-9]+"}
BUCKET = "schemathesis"
STORES = [
    {"type": "FilesystemStore", "bucket": "fs"},
    {"type": "HashdirStore", "bucket": "hashdir"},
    {"type": "ZipStore", "bucket": "archive.zip"},
    {"type": "SqliteStore", "bucket": "objects.sqlite"},
    {"type": "DictStore", "bucket": "ram"},
    {"type": "BucketStore", "bucket": f"{BUCKET}/fuzz"},  # s3_url: the moto server's
]


class Live:
    """The running server, the objects created on it, and tokens for the generated calls.

    ``restore`` puts the objects back (the generated calls delete, rename and reconfigure them), so
    that every operation starts with READY and PENDING media in every kind of store.
    """

    def __init__(self, server: Server, s3_server) -> None:
        self.server = server
        self.base = server.base
        self.s3 = {
            "url": s3_server.url,
            "access_key": s3_server.access_key,
            "secret_key": s3_server.secret_key,
        }
        self.dead_port = free_port()  # nothing listens there
        self.http = new_session()
        self.token = server.session.headers["Authorization"].split(" ", 1)[1]
        self.stores = [
            {**store, "s3_url": self.s3["url"]} if store["type"] == "BucketStore" else store
            for store in STORES
        ]
        self.media = {}  # pid -> (store, bytes or None for PENDING)
        for number, store in enumerate(self.stores):
            self.media[f"seed-{number}"] = (store, f"bytes of seed-{number}\n".encode() * 50)
            self.media[f"pending-{number}"] = (store, None)
        self.media["10.1234/doi-named"] = (self.stores[0], b"a pid with a slash")
        self.store_pks: list[int] = []
        self.s3_pk = 0
        self.webhook_id = 0
        self.operation = None
        self.restore()
        # Minted in one go, without a login each (password hashing is slow, and by the time logout is
        # fuzzed, fuzzed logins may have been throttled).
        code = (
            "from django.contrib.auth import get_user_model; from mediastore.models import ApiToken; "
            f"user = get_user_model().objects.get(username={SERVICE_USER!r}); "
            f"print(*(ApiToken.objects.issue(user)[1] for _ in range({LOGOUT_TOKENS})))"
        )
        self.spare_tokens = server.manage("shell", "--verbosity", "0", "-c", code).split()
        assert len(self.spare_tokens) == LOGOUT_TOKENS
        code = (
            "from django.contrib.auth import get_user_model; from mediastore.models import ApiToken; "
            f"owner = get_user_model().objects.get_or_create(username={TOKEN_OWNER!r})[0]; "
            f"made = [ApiToken.objects.issue(owner) for _ in range({LOGOUT_TOKENS})]; "
            "print(*(f'{row.pk}:{clear}' for row, clear in made))"
        )
        pairs = [
            pair.split(":", 1) for pair in server.manage("shell", "--verbosity", "0", "-c", code).split()
        ]
        self.owner_token_ids = [int(pk) for pk, _ in pairs]
        self.owner_tokens = [clear for _, clear in pairs]

    def spare_token(self) -> str:
        if not self.spare_tokens:
            pytest.fail(f"POST /api/logout was called more than {LOGOUT_TOKENS} times: raise LOGOUT_TOKENS")
        return self.spare_tokens.pop()

    def owner_token(self) -> str:
        """A token of the other account, one per ``DELETE /api/tokens/{id}`` (it may revoke itself)."""
        if not self.owner_tokens:
            pytest.fail(f"DELETE /api/tokens/{{id}} was called more than {LOGOUT_TOKENS} times")
        return self.owner_tokens.pop()

    def call(self, method: str, path: str, *codes: int, **kwargs):
        response = self.server.session.request(method, f"{self.base}{path}", timeout=60, **kwargs)
        assert response.status_code in (codes or (200,)), f"{method} {path}: {response.text}"
        return response

    def restore(self) -> None:
        """Identifier types with their patterns, moto's S3 configuration, one store of each kind,
        and the media (with tags, identifiers, metadata; READY with bytes or PENDING)."""
        for name, pattern in IDENTIFIER_TYPES.items():
            if (
                self.call(
                    "PUT", "/api/identifier", 204, 404, json={"name": name, "pattern": pattern}
                ).status_code
                == 404
            ):
                self.call("POST", "/api/identifier", json={"name": name, "pattern": pattern})
        if self.call("PUT", f"/api/s3cfg/{self.s3_pk}", 204, 404, json=self.s3).status_code == 404:
            self.s3_pk = self.call("POST", "/api/s3cfg", json=self.s3).json()["pk"]
        self.store_pks = [self.call("POST", "/api/store", json=store).json()["pk"] for store in self.stores]
        webhook = {"url": f"http://127.0.0.1:{self.dead_port}/hook", "active": True}
        if self.call("PATCH", f"/api/webhooks/{self.webhook_id}", 200, 404, json=webhook).status_code == 404:
            self.webhook_id = self.call("POST", "/api/webhooks", json=webhook).json()["id"]
        found = {m["pid"]: m for m in self.call("POST", "/api/media/read", json=list(self.media)).json()}
        for number, (pid, (store, data)) in enumerate(self.media.items()):
            if pid not in found:
                body = {
                    "pid": pid,
                    "pid_type": "doi" if pid.startswith("10.") else "pidtype",
                    "store_config": store,
                    "identifiers": {"seq": str(number), "local": f"local-{number}"},
                    "metadata": {"n": number, "kind": store["type"], "nested": {"list": [1, "two", None]}},
                    "tags": ["seeded", store["type"].lower()],
                }
                self.call("POST", "/api/media", json=body)
            if data is not None and (pid not in found or found[pid]["store_status"] != "READY"):
                self.call("PUT", f"/api/media/{pid}/content", data=data)

    def known(self, operation_path: str, name: str) -> list:
        """Values of objects that exist, for the path parameter ``name`` of an operation."""
        if name == "pid":
            return list(self.media)
        if name == "name":
            return list(IDENTIFIER_TYPES)
        if name == "pk":
            return [self.s3_pk] if operation_path.startswith("/api/s3cfg") else list(self.store_pks)
        if name == "id":
            return (
                [self.webhook_id]
                if operation_path.startswith("/api/webhooks")
                else list(self.owner_token_ids)
            )
        return []


@pytest.fixture(scope="module")
def live(s3_server):
    server = Server("mediastore-schemathesis-", WORKERS, MEDIASTORE_WEBHOOK_ALLOW_HOSTS="127.0.0.1")
    try:
        s3_server.client().create_bucket(Bucket=BUCKET)
        yield Live(server, s3_server)
    finally:
        server.close()


def with_known_pid(body, pid: str):
    """``body`` naming ``pid`` wherever it names a media: a list of pids, an object's ``pid``, the
    ``pid`` of each object in a list, an upload's ``mediadata.pid``."""
    if isinstance(body, list):
        return [with_known_pid(item, pid) if isinstance(item, dict) else pid for item in body]
    if isinstance(body, dict):
        body = dict(body)
        if "pid" in body:
            body["pid"] = pid
        if isinstance(body.get("mediadata"), dict):
            body["mediadata"] = with_known_pid(body["mediadata"], pid)
    return body


def creatable(body, store: dict):
    """``body`` with an existing pid_type and store, and no identifiers, wherever it describes a new
    media (a create's body, each item of a bulk create, an upload's ``mediadata``), so that creation
    can succeed."""
    if isinstance(body, list):
        return [creatable(item, store) for item in body]
    if isinstance(body, dict):
        body = dict(body)
        if "pid_type" in body:
            body["pid_type"] = "pidtype"
        if "store_config" in body:
            body["store_config"] = store
        if "identifiers" in body:
            body["identifiers"] = {}
        if isinstance(body.get("mediadata"), dict):
            body["mediadata"] = creatable(body["mediadata"], store)
    return body


def steer_to_known_objects(schema, live: Live) -> None:
    """Half of the generated path parameters and bodies name objects that exist, so that operations
    get past their 404 and reach the code behind it; the other half stays as generated."""

    @schema.hook
    def flatmap_path_parameters(context, path_parameters):
        path = context.operation.path
        choices = [st.just(path_parameters)]
        for name in path_parameters or {}:
            if values := live.known(path, name):
                choices.append(st.sampled_from(values).map(lambda v, n=name: {**path_parameters, n: v}))
        return st.one_of(choices)

    @schema.hook
    def flatmap_body(context, body):
        return st.one_of(
            st.just(body),
            st.sampled_from(list(live.media)).map(lambda pid: with_known_pid(body, pid)),
            st.sampled_from(live.stores).map(lambda store: creatable(body, store)),
        )


@pytest.fixture(scope="module")
def api_schema(live):
    """The document the live server serves, read once (not at collection time, when no server
    runs yet)."""
    response = live.http.get(f"{live.base}/api/openapi.json", timeout=30)
    assert response.status_code == 200, response.text
    document = json.loads(response.content)
    config = SchemathesisConfig.from_dict({**CONFIG, "base-url": live.base})
    loaded = schemathesis.openapi.from_dict(document, config=config)
    steer_to_known_objects(loaded, live)
    return loaded


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(autouse=True)
def node_id_for_schemathesis(request):
    """schemathesis 4.32 reads and rewrites ``node._nodeid`` to name each operation's subtest;
    pytest 9.2 keeps node ids elsewhere and has no such attribute. Give it one (it only renames the
    reports of this test)."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


def keep_on_loopback(case, live: Live) -> None:
    """Rewrite an S3 or webhook url the server would accept, unless it is moto's, to a closed port
    of 127.0.0.1.

    The server later connects to the url of an S3 configuration (for BucketStore media) and of a
    webhook (and resolves a webhook's host at once); generated urls name arbitrary hosts, and tests
    may talk to 127.0.0.1 only. Urls the server must refuse (no http(s) scheme, no host,
    unparsable) are sent unchanged.
    """
    operation = (case.method.upper(), case.path)
    if operation not in S3_URL_WRITES | WEBHOOK_URL_WRITES or not isinstance(case.body, dict):
        return
    url = case.body.get("url")
    if not isinstance(url, str) or url == live.s3["url"]:
        return
    try:
        parts = urlsplit(url)
    except ValueError:
        return
    if parts.scheme.lower() in ("http", "https") and parts.netloc:
        case.body["url"] = f"http://127.0.0.1:{live.dead_port}/{quote(url, safe='')}"


@schema.parametrize()
def test_every_operation_answers_as_documented(case, live):
    if case.operation.label != live.operation:  # each operation starts from the seeded objects
        live.operation = case.operation.label
        live.restore()
    operation = (case.method.upper(), case.path)
    token = {LOGOUT: live.spare_token, REVOKE: live.owner_token}.get(operation, lambda: live.token)()
    keep_on_loopback(case, live)
    case.call_and_validate(session=live.http, headers={"Authorization": f"Bearer {token}"})
