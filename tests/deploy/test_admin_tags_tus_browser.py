"""The tag list and the resumable uploads of the admin (both read-only) in headless Chromium
against gunicorn (debug off), as an administrator of the ``admins`` group and as the superuser:
each tag with its media count, the count leading to those media in the media list; an unfinished
tus upload with its bytes received, and terminating it through the action. axe-core finds no
serious or critical violation at 1400 and at 400 px; every page is screenshotted (the browser
artifacts folder, see tests/deploy/test_browser.py)."""

from __future__ import annotations

import base64
import json
from urllib.parse import urlsplit

import pytest

from tests.deploy.test_browser import artifacts, browser  # noqa: F401  (module-scoped fixtures)
from tests.deploy.test_media_page_browser import check_widths, log_in
from tests.support.servers import ADMIN_USER, PASSWORD, Server

pytestmark = pytest.mark.e2e

STORE = {"type": "FilesystemStore", "bucket": "tags"}
ADMIN = """
from django.contrib.auth.models import Group, User
user = User.objects.create_user("ada", password={password!r}, is_staff=True)
user.groups.add(Group.objects.get(name="admins"))
"""


@pytest.fixture(scope="module")
def server():
    server = Server("mediastore-admin-tags-", 1, DJANGO_SECURE_COOKIES="false")
    try:
        server.manage("shell", "-c", ADMIN.format(password=PASSWORD))
        yield server
    finally:
        server.close()


def tus_metadata(**entries) -> str:
    return ",".join(
        f"{key} {base64.b64encode((v if isinstance(v, str) else json.dumps(v)).encode()).decode()}"
        for key, v in entries.items()
    )


def terminated(driver) -> bool:
    """The list after the action: its message shown and the upload gone (False while the page is
    still being replaced: an element read then would be stale)."""
    from selenium.common.exceptions import WebDriverException

    try:
        return bool(
            driver.execute_script(
                "return Array.from(document.querySelectorAll('.messagelist li'))"
                ".some(li => li.textContent.includes('Terminated 1'))"
                " && !document.querySelector('#content').innerText.includes('resumed-1')"
            )
        )
    except WebDriverException:
        return False


def test_tags_are_listed_with_their_media_and_cannot_be_renamed(server, browser):  # noqa: F811
    body = [
        {
            "pid": f"tagged-{n}",
            "pid_type": "pidtype",
            "store_config": STORE,
            "tags": ["kelp"] + ["rare"] * (n == 0),
        }
        for n in range(3)
    ]
    response = server.session.post(f"{server.base}/api/media/create", json=body, timeout=30)
    assert response.status_code == 200, response.text
    base = server.base
    log_in(browser, base, ADMIN_USER)
    browser.open(f"{base}/admin/taggit/tag/?q=kelp", None)
    rows = browser.css("#result_list tbody tr")
    assert len(rows) == 1 and "kelp" in rows[0].text
    link = rows[0].find_element("css selector", "td.field-tagged_media a")
    assert link.text == "3"
    check_widths(browser, "admin-tags", "#changelist .results, #changelist-search")
    link.click()
    browser.wait(lambda d: urlsplit(d.current_url).path == "/admin/media/media/")
    listed = sorted(a.text for a in browser.css("#result_list tbody th a"))
    assert listed == ["tagged-0", "tagged-1", "tagged-2"]
    browser.shot("admin-tags-media")
    browser.open(f"{base}/admin/taggit/tag/?q=rare", None)
    browser.css("#result_list tbody th a")[0].click()  # the tag's own page: a view, no form to save
    browser.wait(lambda d: "/change/" in urlsplit(d.current_url).path)
    assert browser.css('input[name="_save"]') == [] and browser.css("input#id_name") == []
    browser.shot("admin-tag-page")
    tags = server.media("tagged-0")["tags"]
    assert sorted(tags) == ["kelp", "rare"]


def test_an_unfinished_tus_upload_is_shown_and_terminated(server, browser):  # noqa: F811
    session, base = server.session, server.base
    headers = {
        "Tus-Resumable": "1.0.0",
        "Upload-Length": "1000",
        "Upload-Metadata": tus_metadata(pid="resumed-1", pid_type="pidtype", store=STORE),
    }
    created = session.post(f"{base}/api/tus", headers=headers, timeout=30)
    assert created.status_code == 201, created.text
    location = created.headers["Location"]
    url = location if location.startswith("http") else f"{base}{location}"
    patch = {
        "Tus-Resumable": "1.0.0",
        "Upload-Offset": "0",
        "Content-Type": "application/offset+octet-stream",
    }
    sent = session.patch(url, data=b"x" * 250, headers=patch, timeout=30)
    assert sent.status_code == 204, sent.text
    log_in(browser, base, "ada")  # an administrator who is not a superuser
    browser.open(f"{base}/admin/tus/tusupload/", None)
    rows = browser.css("#result_list tbody tr")
    assert len(rows) == 1 and "resumed-1" in rows[0].text and "250 of 1,000 bytes (25.0%)" in rows[0].text, (
        rows[0].text
    )
    check_widths(browser, "admin-tus-uploads", "#changelist .results, #changelist-form")
    rows[0].find_element("css selector", "input.action-select").click()
    browser.one('select[name="action"] option[value="terminate"]').click()
    browser.one('button[name="index"]').click()
    browser.wait(lambda d: terminated(d))
    browser.shot("admin-tus-terminated")
    gone = session.head(url, headers={"Tus-Resumable": "1.0.0"}, timeout=30)
    assert gone.status_code in (404, 410), gone.status_code
