"""Create rows on a running earlier server through its own API (as its users would)."""

import base64
import sys

import boto3
import requests

base, s3url, root = sys.argv[1], sys.argv[2], sys.argv[3]
s = requests.Session()
tok = s.post(f"{base}/api/login", json={"username": "sa-mediastore", "password": "svc-pass-123"}).json()[
    "token"
]
print("token", tok)
s.headers["Authorization"] = f"Bearer {tok}"


def ok(r):
    if r.status_code >= 300:
        raise SystemExit(f"{r.request.method} {r.url}: {r.status_code} {r.text[:500]}")
    return r


ok(s.post(f"{base}/api/identifier", json={"name": "local", "pattern": ""}))
ok(s.post(f"{base}/api/identifier", json={"name": "bin", "pattern": r"D\d{8}T\d{6}_IFCB\d{3}"}))
ok(
    s.post(
        f"{base}/api/s3cfg",
        json={"url": s3url, "access_key": "earlier-access", "secret_key": "earlier-secret"},
    )
)
boto3.client(
    "s3", endpoint_url=s3url, aws_access_key_id="a", aws_secret_access_key="b", region_name="us-east-1"
).create_bucket(Bucket="earlier-bucket")
stores = {
    "fs": {"type": "FilesystemStore", "bucket": f"{root}/files"},
    "sq": {"type": "SqliteStore", "bucket": f"{root}/objects.sqlite3"},
    "ram": {"type": "DictStore", "bucket": "ram"},
    "s3": {"type": "BucketStore", "bucket": "earlier-bucket", "s3_url": s3url},
}


def upload(pid, store, data, tags, pid_type="local", identifiers=None, metadata=None):
    body = {
        "mediadata": {
            "pid": pid,
            "pid_type": pid_type,
            "store_config": stores[store],
            "identifiers": identifiers or {},
            "metadata": metadata or {},
            "tags": tags,
        },
        "base64": base64.b64encode(data).decode(),
    }
    print(pid, ok(s.post(f"{base}/api/upload", json=body)).json())


upload(
    "D20240301T100000_IFCB001",
    "fs",
    b"roi bytes " * 50,
    ["plankton", "shared"],
    "bin",
    {"local": "cast-1"},
    {"cruise": {"leg": 1}},
)
upload("in-sqlite", "sq", b"sqlite bytes", ["shared"], metadata={"n": 1})
upload("in-ram", "ram", b"ram bytes", [])
upload("on-s3", "s3", b"s3 bytes " * 10, ["shared", "s3"])
ok(
    s.post(
        f"{base}/api/media",
        json={
            "pid": "pending-one",
            "pid_type": "local",
            "store_config": stores["fs"],
            "identifiers": {},
            "metadata": {},
            "tags": ["draft"],
        },
    )
)
ok(
    s.post(
        f"{base}/api/media",
        json={
            "pid": "to-delete",
            "pid_type": "local",
            "store_config": stores["fs"],
            "identifiers": {},
            "metadata": {},
            "tags": [],
        },
    )
)
print(
    ok(
        s.put(
            f"{base}/api/media/update/metadata",
            json=[{"pid": "D20240301T100000_IFCB001", "keys": [], "data": {"cruise": {"leg": 2}}}],
        )
    ).json()
)
print(ok(s.patch(f"{base}/api/media/update/tags", json=[{"pid": "in-sqlite", "tags": ["late-tag"]}])).json())
print(
    ok(
        s.put(
            f"{base}/api/media/update/identifiers",
            json=[{"pid": "in-sqlite", "identifiers": {"bin": "D20240301T100000_IFCB009"}}],
        )
    ).json()
)
print(ok(s.patch(f"{base}/api/media/to-delete", json={"new_pid": "renamed-then-deleted"})).status_code)
print(ok(s.delete(f"{base}/api/media/renamed-then-deleted")).status_code)
print("dump", [m["pid"] for m in ok(s.get(f"{base}/api/media/dump")).json()])
