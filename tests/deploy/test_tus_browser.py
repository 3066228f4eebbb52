"""The upload page (/upload/) in headless Chromium against gunicorn: a 30 MiB file uploaded with the
vendored tus-js-client, the network cut (DevTools offline mode) in the middle and restored, and the
media READY with the file's SHA-256. Screenshots go where tests/deploy/test_browser.py puts its own
(``$MEDIASTORE_ARTIFACTS_DIR/browser-<database>``)."""

from __future__ import annotations

import hashlib
import os
import time

import pytest

from tests.deploy.test_browser import artifacts, browser  # noqa: F401  (fixtures)
from tests.support.servers import ADMIN_USER, PASSWORD, Server

pytestmark = pytest.mark.e2e

MIB = 1 << 20


@pytest.fixture(scope="module")
def server():
    app = Server("mediastore-tus-page-", 4)
    try:
        answer = app.session.post(
            f"{app.base}/api/store", json={"type": "FilesystemStore", "bucket": "page-uploads"}, timeout=30
        )
        assert answer.status_code == 200, answer.text
        yield app
    finally:
        app.close()


def throttle(browser, *, offline: bool, upload_bytes_per_s: int = -1) -> None:  # noqa: F811
    browser.driver.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": offline, "latency": 0, "downloadThroughput": -1, "uploadThroughput": upload_bytes_per_s},
    )


def test_a_30_mib_file_survives_a_network_cut(server, browser, tmp_path):  # noqa: F811
    data = os.urandom(30 * MIB)
    path = tmp_path / "page-upload.bin"
    path.write_bytes(data)
    browser.open(f"{server.base}/admin/login/?next=/upload/", None)
    browser.one("#id_username").send_keys(ADMIN_USER)
    browser.one("#id_password").send_keys(PASSWORD)
    browser.one("input[type=submit]").click()
    browser.wait(lambda d: d.current_url.endswith("/upload/"))
    browser.one("#files")
    browser.shot("upload-page")
    browser.one("#pid").send_keys("page-upload.bin")
    throttle(browser, offline=False, upload_bytes_per_s=3 * MIB)  # slow enough to cut in the middle
    try:
        browser.css("#files")[0].send_keys(str(path))
        browser.wait(lambda d: int(browser.one(".file progress").get_attribute("value")) >= 20)
        browser.shot("upload-progress")
        throttle(browser, offline=True)
        browser.wait(lambda d: "offline" in browser.one(".file .state").text)
        browser.shot("upload-offline")
        kept = int(browser.one(".file progress").get_attribute("value"))
        time.sleep(2)
        assert 0 < kept < 100
    finally:
        throttle(browser, offline=False)
    done = browser.wait(lambda d: browser.css(".file.done"), timeout=180)[0]
    link = browser.one(".file.done a.media")
    assert link.text == "page-upload.bin" and "/admin/media/media/?q=page-upload.bin" in link.get_attribute(
        "href"
    )
    browser.shot("upload-done", show=done)
    media = server.media("page-upload.bin")
    assert media["store_status"] == "READY" and media["size"] == len(data)
    assert media["checksum"] == f"sha256:{hashlib.sha256(data).hexdigest()}"
    assert server.content("page-upload.bin") == data
