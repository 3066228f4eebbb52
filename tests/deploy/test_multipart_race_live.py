"""An S3 direct multipart completion racing ``DELETE /api/upload/{pid}``, through real gunicorn
workers and a moto S3 server.

Regression: the abandon checked PENDING outside the media's row lock and aborted the upload while
the completion was about to join it: the completion answered 502 (S3's NoSuchUpload). Now one of
the two is done and the other is 409 (or 404 once the media is gone), never a 5xx, and what is
left agrees with the answers. The failpoint widens the window between the completion's look at
the upload and S3's join (``delay``: up to 50 ms).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.servers import Server

pytestmark = pytest.mark.e2e

ROUNDS = 12
DATA = os.urandom(3000)  # one part


@pytest.fixture(scope="module")
def server(s3_server):
    srv = Server("mediastore-mprace-", 2, MEDIASTORE_FAILPOINTS="content.before_multipart_complete=delay")
    srv.add_s3(s3_server)
    try:
        yield srv
    finally:
        srv.close()


def test_a_completion_racing_an_abandon_is_one_or_the_other_never_a_5xx(server, s3_server, s3_bucket):
    store = {"type": "BucketStore", "bucket": f"{s3_bucket}/mprace", "s3_url": s3_server.url}
    completer, abandoner = server.client(), server.client()
    seen = set()
    for round_ in range(ROUNDS):
        pid = f"mprace.{round_}"
        body = {"mediadata": {"pid": pid, "pid_type": "pidtype", "store_config": store}}
        begun = server.session.post(
            f"{server.base}/api/upload", json={**body, "multipart": {"size": len(DATA)}}, timeout=30
        )
        assert begun.status_code == 200, begun.text
        [part] = begun.json()["parts"]
        sent = requests.put(part["url"], data=DATA, timeout=30)
        assert sent.status_code == 200, sent.text
        parts = {"parts": [{"part_number": 1, "etag": sent.headers["ETag"]}]}

        def complete(pid=pid, parts=parts) -> int:
            url = f"{server.base}/api/upload/{pid}/complete"
            return completer.post(url, json=parts, timeout=60).status_code

        def abandon(pid=pid) -> int:
            return abandoner.delete(f"{server.base}/api/upload/{pid}", timeout=60).status_code

        with ThreadPoolExecutor(2) as pool:
            completed, abandoned = pool.submit(complete), pool.submit(abandon)
            answers = (completed.result(), abandoned.result())
        seen.add(answers)
        assert answers in {(200, 409), (409, 204), (404, 204)}, answers
        media = server.session.get(f"{server.base}/api/media/{pid}", timeout=30)
        if answers[0] == 200:
            assert media.json()["store_status"] == "READY" and server.content(pid) == DATA
        else:
            assert media.status_code == 404
    print("answers (complete, abandon) seen:", sorted(seen))
