"""Issue 30 items 3, 4 and 6 in headless Chromium against gunicorn (debug off), as a writer: search
the media list with three filters, tag the 200 matches through "select all" (a background job,
followed on its progress page to the end), move 20 media to another store; the API then shows
exactly those changes. Every page is screenshotted (the browser artifacts folder, see
tests/deploy/test_browser.py) and checked by axe-core (vendored, injected into the page: no CDN)
for serious or critical violations at 1400 and at 400 px wide. ``admin-list-facets.png`` there is
the picture docs/admin-media-list.png is taken from."""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.deploy.test_browser import artifacts, browser  # noqa: F401  (module-scoped fixtures)
from tests.support.servers import PASSWORD, Server

pytestmark = pytest.mark.e2e

AXE = Path(__file__).parents[1] / "support" / "vendor" / "axe-core-4.11.0" / "axe.min.js"
WRITER = "e2e-writer"
WIDTHS = (1400, 400)
FIRST = {"type": "FilesystemStore", "bucket": "first"}

CREATE_WRITER = f"""
from django.contrib.auth.models import Group, User
user = User.objects.create_user({WRITER!r}, password={PASSWORD!r}, is_staff=True)
user.groups.add(Group.objects.get(name="writers"))
"""


@pytest.fixture(scope="module")
def server():
    server = Server("mediastore-admin-list-", 2, DJANGO_SECURE_COOKIES="false")
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def stores(server) -> dict[str, int]:
    """230 media of a cruise with depths 0..229 (the 200 deepest are the search's), 10 others, and
    20 with bytes in the store "first"; the writer's account."""
    session, base = server.session, server.base
    pks = {}
    for bucket in ("first", "second"):
        response = session.post(
            f"{base}/api/store", json={"type": "FilesystemStore", "bucket": bucket}, timeout=30
        )
        assert response.status_code == 200, response.text
        pks[bucket] = response.json()["pk"]
    body = [
        {
            "pid": f"c42-img-{n:03d}",
            "pid_type": "pidtype",
            "store_config": FIRST,
            "metadata": {"depth": n},
            "tags": ["plankton"] + (["blurry"] if n % 7 == 0 else []),
        }
        for n in range(230)
    ] + [
        {"pid": f"other-{n}", "pid_type": "pidtype", "store_config": FIRST, "tags": ["plankton"]}
        for n in range(10)
    ]
    response = session.post(f"{base}/api/media/create", json=body, timeout=120)
    assert response.status_code == 200, response.text[:500]
    for n in range(20):
        mediadata = {"pid": f"bytes-{n:02d}", "pid_type": "pidtype", "store_config": FIRST}
        data = base64.b64encode(f"bytes of {n}".encode() * 50).decode()
        response = session.post(
            f"{base}/api/upload", json={"mediadata": mediadata, "base64": data}, timeout=30
        )
        assert response.status_code == 200, response.text
    server.manage("shell", "-c", CREATE_WRITER)
    return pks


def check_accessibility(browser, name: str) -> None:  # noqa: F811
    """axe-core finds no serious or critical violation at either width; a screenshot at each."""
    size = browser.driver.get_window_size()
    try:
        for width in WIDTHS:
            browser.driver.set_window_size(width, 1000)
            browser.js(AXE.read_text())
            violations = browser.driver.execute_async_script(
                """const done = arguments[arguments.length - 1];
                axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations
                    .filter(v => ['serious', 'critical'].includes(v.impact))
                    .map(v => [v.id, v.impact, v.nodes.map(n => n.target.join(' ')).slice(0, 5)])));"""
            )
            assert violations == [], (name, width, violations)
            browser.shot(f"{name}-{width}px")
    finally:
        browser.driver.set_window_size(size["width"], size["height"])


def api_pids(server, query: str) -> set[str]:
    response = server.session.get(f"{server.base}/api/media?{query}&limit=10000", timeout=60)
    assert response.status_code == 200, response.text
    return {item["pid"] for item in response.json()["items"]}


def choose_action(browser, action: str) -> None:  # noqa: F811
    from selenium.webdriver.support.ui import Select

    Select(browser.one('select[name="action"]')).select_by_value(action)
    browser.one('button[name="index"]').click()
    browser.wait(lambda d: d.execute_script("return document.readyState") == "complete")


def test_writer_searches_tags_everything_matching_and_moves(server, browser, stores):  # noqa: F811
    base = server.base
    browser.driver.delete_all_cookies()
    browser.open(f"{base}/admin/login/?next=/admin/media/media/", None)
    browser.one("#id_username").send_keys(WRITER)
    browser.one("#id_password").send_keys(PASSWORD)
    browser.one('#login-form [type="submit"]').click()
    browser.wait(lambda d: urlsplit(d.current_url).path == "/admin/media/media/")
    browser.wait(lambda d: d.execute_script("return document.readyState") == "complete")
    assert browser.one("#media-facets").is_displayed()
    check_accessibility(browser, "admin-list")

    # three filters through the form: they land in the URL, in the API's syntax
    browser.one("#search-pid-0").send_keys("c42-img-*")
    browser.one("#search-tags_all-0").send_keys("plankton")
    browser.one("#search-metadata-0").send_keys("depth:gte:30")
    browser.one("#api-search-submit").click()
    browser.wait(lambda d: "metadata=" in d.current_url)
    browser.wait(lambda d: d.execute_script("return document.readyState") == "complete")
    query = parse_qs(urlsplit(browser.driver.current_url).query)
    assert query["pid"] == ["c42-img-*"] and query["tags_all"] == ["plankton"]
    assert query["metadata"] == ["depth:gte:30"]
    assert "200 media" in browser.one(".paginator").text
    facets = browser.one("#facet-tags").text
    assert "plankton\n200" in facets.replace(" ", "\n") or "plankton200" in facets.replace("\n", "").replace(
        " ", ""
    )
    browser.shot("admin-list-facets")
    check_accessibility(browser, "admin-list-filtered")

    # everything matching: tick the page, then "Select all 200 media"
    browser.one("#action-toggle").click()
    browser.one(".actions .question a").click()
    choose_action(browser, "add_tags")
    assert "200" in browser.one("#action-count").text and "background" in browser.one("#action-count").text
    browser.one("#id_tags").send_keys("reviewed")
    check_accessibility(browser, "admin-action-form")
    browser.one("#action-apply").click()
    browser.wait(lambda d: "/admin/content/adminjob/" in d.current_url)
    browser.wait(lambda d: d.execute_script("return document.readyState") == "complete")
    browser.shot("admin-job-running")
    browser.wait(
        lambda d: (
            d.execute_script("const j = document.getElementById('job-progress'); return j && j.dataset.state")
            in ("done", "failed")
        ),
        timeout=180,
    )
    assert browser.one("#job-progress").get_attribute("data-state") == "done"
    assert "Done: 200 media tagged" in browser.one("#job-status").text
    check_accessibility(browser, "admin-job-done")

    # move 20 media: the preview says how many and how many bytes
    browser.open(f"{base}/admin/media/media/?pid=bytes-*", None)
    browser.one("#action-toggle").click()
    choose_action(browser, "move_to_store")
    assert "20" in browser.one("#action-count").text
    assert "Bytes to copy: 10500 " in browser.one("#move-bytes").text
    from selenium.webdriver.support.ui import Select

    Select(browser.one("#id_store")).select_by_value(str(stores["second"]))
    check_accessibility(browser, "admin-move-preview")
    browser.one("#action-apply").click()
    browser.wait(lambda d: "20 media moved" in d.find_element("css selector", ".messagelist").text)
    browser.shot("admin-moved")

    # the API shows exactly these changes
    deep = {f"c42-img-{n:03d}" for n in range(30, 230)}
    assert api_pids(server, "tags=reviewed") == deep
    moved = {f"bytes-{n:02d}" for n in range(20)}
    assert api_pids(server, f"store_config={stores['second']}") == moved
    assert api_pids(server, f"store_config={stores['first']}") == {
        *(f"c42-img-{n:03d}" for n in range(230)),
        *(f"other-{n}" for n in range(10)),
    }
    assert server.content("bytes-07") == b"bytes of 7" * 50
    history = server.session.get(f"{base}/api/media/c42-img-100/history", timeout=30).json()
    assert len(history) == 2 and history[0]["user"] == WRITER
    assert api_pids(server, "tags=reviewed&pid=other-*") == set()
