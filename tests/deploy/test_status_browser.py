"""The status page in headless Chromium against gunicorn (debug off): an anonymous visit goes
to the admin login, the admin lands on /status/ after logging in, every chart is drawn with data
(SVG shapes with a visible size), and the failure ``manage.py verify`` found is listed.
Screenshots go to the browser artifacts folder (see tests/deploy/test_browser.py);
``status-page-full.png`` there is the picture docs/status-page.png is taken from."""

from __future__ import annotations

import base64
import subprocess
import sys
from urllib.parse import urlsplit

import pytest

from tests.deploy.test_browser import artifacts, browser  # noqa: F401  (module-scoped fixtures)
from tests.support.processes import REPO
from tests.support.servers import ADMIN_USER, PASSWORD, Server

pytestmark = pytest.mark.e2e

CHARTS = [
    "by-status",
    "by-pid-type",
    "store-bytes",
    "store-objects",
    "per-day",
    "health",
    "owner-bytes",
    "quota-use",
]

# Shapes of the data in each SVG (pygal draws bars as rect, pie slices as path) with their size.
SHAPES_JS = """
return Array.from(document.querySelectorAll('figure[id^="chart-"] > svg')).map(svg => {
    const shapes = Array.from(svg.querySelectorAll('.series .bar rect, .series .slice path'))
        .map(s => s.getBBox()).filter(box => box.width > 0 && box.height > 0);
    return [svg.parentElement.id, shapes.length, svg.getBoundingClientRect().width];
});
"""


@pytest.fixture(scope="module")
def server():
    """Its own server (2 workers, debug off), so that a fixity check can find a rotten file in its
    storage root and the page shows a failure too."""
    server = Server("mediastore-status-", 2, DJANGO_SECURE_COOKIES="false")
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def some_media(server) -> None:
    """Media in two stores, three pid types, READY and PENDING, over several days; one file rots
    on disk and ``manage.py verify`` (run as an operator would, beside the server) finds it; the
    stores are probed as the timer does."""
    session, base = server.session, server.base
    for name in ("image", "bin", "sample"):
        response = session.post(f"{base}/api/identifier", json={"name": name, "pattern": ""}, timeout=30)
        assert response.status_code in (200, 409), response.text
    stores = [{"type": "DictStore", "bucket": "scratch"}, {"type": "FilesystemStore", "bucket": "archive"}]
    for n in range(24):
        mediadata = {
            "pid": f"st-{n}",
            "pid_type": ("image", "bin", "sample")[n % 3],
            "store_config": stores[n % 2],
        }
        if n % 5 == 4:
            response = session.post(f"{base}/api/media", json=mediadata, timeout=30)
        else:
            data = base64.b64encode(b"x" * (20_000 * (n + 1))).decode()
            response = session.post(
                f"{base}/api/upload", json={"mediadata": mediadata, "base64": data}, timeout=30
            )
        assert response.status_code == 200, response.text
    # a quota on the filesystem store, so that the quota chart has a bar
    [archive] = [s for s in session.get(f"{base}/api/stores", timeout=30).json() if s["bucket"] == "archive"]
    quota = {"store": archive["pk"], "user": None, "max_bytes": 10**7, "max_media": None}
    assert session.put(f"{base}/api/quotas", json=quota, timeout=30).status_code == 200
    rotten = next((server.workdir / "data" / "stores" / "archive").iterdir())
    rotten.write_bytes(b"rot" + rotten.read_bytes()[3:])
    done = subprocess.run(
        [sys.executable, "manage.py", "verify", "--workers", "2"],
        cwd=REPO,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and "19 ok, 1 failed" in done.stdout, done.stdout + done.stderr
    # the store health the page draws is the last probe the timer recorded (viewing writes nothing)
    probed = subprocess.run(
        [sys.executable, "manage.py", "probe_stores"],
        cwd=REPO,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probed.returncode == 0, probed.stdout + probed.stderr


def test_status_page_draws_every_chart(server, browser, some_media):  # noqa: F811
    base = server.base
    browser.driver.delete_all_cookies()
    browser.open(f"{base}/status/", "status-login")
    assert "/admin/login/" in browser.driver.current_url and "next=/status/" in browser.driver.current_url

    browser.one("#id_username").send_keys(ADMIN_USER)
    browser.one("#id_password").send_keys(PASSWORD)
    browser.one('#login-form [type="submit"]').click()
    # the path, not the URL's end: the login page's own URL ends with "?next=/status/"
    browser.wait(lambda d: urlsplit(d.current_url).path == "/status/")
    browser.wait(lambda d: d.execute_script("return document.readyState") == "complete")
    assert browser.document_status() == 200
    # (the admin login page before it asks for a favicon the server does not have)
    assert not [m for m in browser.severe_console_messages() if "favicon.ico" not in m]

    drawn = {name: (shapes, width) for name, shapes, width in browser.js(SHAPES_JS)}
    assert sorted(drawn) == sorted(f"chart-{name}" for name in CHARTS)
    for name, (shapes, width) in drawn.items():
        assert shapes > 0 and width > 200, (name, shapes, width)
    assert drawn["chart-by-status"][0] == 2  # PENDING and READY slices
    assert drawn["chart-per-day"][0] >= 1
    assert "Mediastore status" in browser.one("h1").text
    failures = browser.one("#verify-failures").text
    assert "Last fixity-check failures (1)" in failures and "checksum sha256:" in failures

    browser.shot("status-page")
    size = browser.driver.get_window_size()
    height = browser.js("return document.documentElement.scrollHeight")
    browser.driver.set_window_size(1280, min(height + 140, 4000))
    try:
        browser.shot("status-page-full")
    finally:
        browser.driver.set_window_size(size["width"], size["height"])
