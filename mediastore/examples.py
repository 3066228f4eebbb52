"""The example requests Swagger UI fills in: one walk through the API, written into the OpenAPI
document.

Every example works as it is, on a new server after the README's "First steps" (identifier types
`doi` and `filename`, the store `FilesystemStore` `products`, which is store 1, and the media
`10.1234/demo.1` with bytes), when the operations are tried in the order of
``tests/deploy/test_openapi_examples.py``, which checks that each one answers 2xx. The examples
depend on one another (a pid made by one is renamed by another and deleted by a third), so they
are kept together here rather than on the schemas. Two values no example can know are left out:
the password of `POST /api/login` and the id of `DELETE /api/tokens/{id}` (take it from the
answer of `POST /api/tokens`).
"""

from __future__ import annotations

DEMO = "10.1234/demo.1"  # the README's media, READY with the bytes "hello world"
PRODUCTS = {"type": "FilesystemStore", "bucket": "products"}
BIN_PATTERN = r"D\d{8}T\d{6}_IFCB\d{3}"


def media(pid: str, filename: str, **fields) -> dict:
    return {
        "pid": pid,
        "pid_type": "doi",
        "store_config": PRODUCTS,
        "identifiers": {"filename": filename},
        "metadata": {"instrument": {"id": 7}},
        "tags": ["demo"],
        **fields,
    }


# (METHOD, path) -> {"body": the JSON (or raw) request body, "path": {parameter: value}}
EXAMPLES: dict[tuple[str, str], dict] = {
    ("POST", "/api/login"): {"body": {"username": "admin", "password": "the password from your .env"}},
    ("POST", "/api/tokens"): {
        "body": {"name": "ifcb-7 uploads", "scopes": ["read", "write"], "expires_in": 31536000}
    },
    # Identifier types: `bin` is made, changed and deleted; `doi` and `filename` are in use.
    ("GET", "/api/identifier/{name}"): {"path": {"name": "doi"}},
    ("POST", "/api/identifier"): {"body": {"name": "bin", "pattern": BIN_PATTERN}},
    ("PUT", "/api/identifier"): {"body": {"name": "bin", "pattern": BIN_PATTERN + "(_\\d+)?"}},
    ("DELETE", "/api/identifier/{name}"): {"path": {"name": "bin"}},
    # S3 configuration 1 is made, read, changed and deleted (no store uses it).
    ("POST", "/api/s3cfg"): {
        "body": {"url": "https://s3.example.org", "access_key": "EXAMPLEKEY", "secret_key": "example-secret"}
    },
    ("GET", "/api/s3cfg/{pk}"): {"path": {"pk": 1}},
    ("PUT", "/api/s3cfg/{pk}"): {
        "path": {"pk": 1},
        "body": {
            "url": "https://s3.example.org",
            "access_key": "EXAMPLEKEY2",
            "secret_key": "example-secret2",
        },
    },
    ("DELETE", "/api/s3cfg/{pk}"): {"path": {"pk": 1}},
    # Store 1 is the README's `products`; store 2, a RAM namespace no media uses, is made and deleted.
    ("POST", "/api/store"): {"body": {"type": "DictStore", "bucket": "scratch"}},
    ("GET", "/api/store/{pk}"): {"path": {"pk": 1}},
    ("PATCH", "/api/store/{pk}"): {"path": {"pk": 2}, "body": {"default_ttl": 86400}},
    ("DELETE", "/api/store/{pk}"): {"path": {"pk": 2}},
    # Bytes: demo.5 is uploaded; demo.1's bytes are read, rewritten with the same bytes and verified.
    ("POST", "/api/upload"): {
        "body": {"mediadata": media("10.1234/demo.5", "demo5.txt"), "base64": "aGVsbG8gd29ybGQ="}
    },
    # No parts (null): the completion of a presigned upload; an S3 multipart upload sends its parts.
    ("POST", "/api/upload/{pid}/complete"): {"path": {"pid": DEMO}, "body": None},
    ("GET", "/api/download/url/{pid}"): {"path": {"pid": DEMO}},
    ("POST", "/api/download/urls"): {"body": [DEMO, "10.1234/demo.5"]},
    ("POST", "/api/download/archive"): {"body": {"tags": ["demo"], "format": "zip", "layout": "pid"}},
    ("GET", "/api/download/{pid}"): {"path": {"pid": DEMO}},
    ("PUT", "/api/media/{pid}/content"): {"path": {"pid": DEMO}, "body": "hello world"},
    ("GET", "/api/media/{pid}/content"): {"path": {"pid": DEMO}},
    ("GET", "/api/media/{pid}/verify"): {"path": {"pid": DEMO}},
    ("GET", "/api/media/{pid}/preview"): {"path": {"pid": DEMO}},
    # Replicas: demo.1 gets a copy in a new store 3 (`products-copy`), which is listed and removed
    # (promoting it needs the replication worker to have copied it first).
    ("GET", "/api/media/{pid}/replicas"): {"path": {"pid": DEMO}},
    ("POST", "/api/media/{pid}/replicas"): {
        "path": {"pid": DEMO},
        "body": {"store_config": {"type": "FilesystemStore", "bucket": "products-copy"}},
    },
    ("DELETE", "/api/media/{pid}/replicas/{store_pk}"): {"path": {"pid": DEMO, "store_pk": 3}},
    ("POST", "/api/media/{pid}/replicas/{store_pk}/promote"): {"path": {"pid": DEMO, "store_pk": 3}},
    # A replication rule: every `doi` media tagged `demo` in store 1 gets a copy in `products-copy`.
    ("POST", "/api/rules"): {
        "body": {
            "name": "demo copies",
            "match": {"pid_type": ["doi"], "tags": ["demo"], "store": 1},
            "copies": [{"type": "FilesystemStore", "bucket": "products-copy"}],
        }
    },
    ("DELETE", "/api/rules/{name}"): {"path": {"name": "demo copies"}},
    # Media: demo.2 is made (no bytes), renamed to demo.2a and deleted; demo.3 and demo.4 are made
    # together and deleted together; demo.1 is changed and reverted.
    ("POST", "/api/media"): {"body": media("10.1234/demo.2", "demo2.txt")},
    ("POST", "/api/media/create"): {
        "body": [
            media("10.1234/demo.3", "demo3.txt"),
            media("10.1234/demo.4", "demo4.txt", tags=["demo", "raw"]),
        ]
    },
    ("POST", "/api/media/read"): {"body": [DEMO, "10.1234/demo.2"]},
    ("PATCH", "/api/media/update"): {
        "body": {
            "pids": ["10.1234/demo.3", "10.1234/demo.4"],
            "medias": [{"store_config": 1}, {"store_config": PRODUCTS}],
        }
    },
    ("PATCH", "/api/media/update/tags"): {"body": [{"pid": DEMO, "tags": ["reviewed"]}]},
    ("PUT", "/api/media/update/tags"): {"body": [{"pid": DEMO, "tags": ["demo", "reviewed"]}]},
    ("PUT", "/api/media/update/storekeys"): {
        "body": [{"pid": "10.1234/demo.2", "store_key": "demo/demo-2.txt"}]
    },
    ("PUT", "/api/media/update/identifiers"): {
        "body": [{"pid": DEMO, "identifiers": {"filename": "demo.txt"}}]
    },
    ("PUT", "/api/media/update/metadata"): {
        "body": [{"pid": DEMO, "keys": ["instrument"], "data": {"id": 7, "name": "IFCB"}}]
    },
    ("PATCH", "/api/media/update/metadata"): {
        "body": [{"pid": DEMO, "keys": ["sample"], "data": {"depth": 5, "station": "A"}}]
    },
    ("DELETE", "/api/media/update/metadata"): {"body": [{"pid": DEMO, "keys": ["sample", "station"]}]},
    ("POST", "/api/media/search"): {
        "body": {"tags": ["demo"], "metadata": [{"path": "instrument.id", "op": "eq", "value": 7}]}
    },
    ("GET", "/api/media/{pid}/history"): {"path": {"pid": DEMO}},
    ("POST", "/api/media/{pid}/revert"): {"path": {"pid": DEMO}, "body": {"version": 1}},
    ("GET", "/api/media/{pid}"): {"path": {"pid": DEMO}},
    ("PATCH", "/api/media/{pid}"): {
        "path": {"pid": "10.1234/demo.2"},
        "body": {"new_pid": "10.1234/demo.2a"},
    },
    # A hold on demo.1 is placed and released.
    ("POST", "/api/media/{pid}/hold"): {
        "path": {"pid": DEMO},
        "body": {"until": None, "reason": "under review", "freeze": False},
    },
    ("DELETE", "/api/media/{pid}/hold"): {"path": {"pid": DEMO}},
    ("DELETE", "/api/media/{pid}"): {"path": {"pid": "10.1234/demo.2a"}},
    ("POST", "/api/media/delete"): {"body": ["10.1234/demo.3", "10.1234/demo.4"]},
    # The recycle bin: demo.2a comes back; of demo.3 and demo.4, demo.3 comes back and demo.4 is purged.
    ("POST", "/api/trash/{pid}/restore"): {"path": {"pid": "10.1234/demo.2a"}},
    ("POST", "/api/trash/restore"): {"body": {"pids": ["10.1234/demo.3"]}},
    ("DELETE", "/api/trash/{pid}"): {"path": {"pid": "10.1234/demo.4"}},
    # A quota of a terabyte on the README's store `products` (store 1), for every owner.
    ("PUT", "/api/quotas"): {"body": {"store": 1, "user": None, "max_bytes": 10**12, "max_media": None}},
}


def document_examples(schema: dict) -> dict:
    """Write EXAMPLES into the document: a request body's ``example`` (for each of its media types)
    and a path parameter's ``example``, which Swagger UI fills in at "Try it out". An entry naming an
    operation or parameter the API does not have is a KeyError here, at the first schema build."""
    for (method, path), example in EXAMPLES.items():
        operation = schema["paths"][path][method.lower()]
        if "body" in example:
            for content in operation["requestBody"]["content"].values():
                content["example"] = example["body"]
        for name, value in example.get("path", {}).items():
            parameters = {p["name"]: p for p in operation["parameters"] if p["in"] == "path"}
            parameters[name]["example"] = value
    return schema
