"""The media page in headless Chromium against gunicorn (debug off, one worker): a writer sees a PNG's
preview and the history diff of two metadata changes, reverts one through the confirmation page and
the API then has the reverted metadata; a reader sees previews and history and no action; axe-core
(vendored, injected) finds no serious or critical violation at 1400 and at 400 px. A decompression
bomb PNG and a 300 MB TIFF (sparse on disk) get "no preview" while the one worker stays up and the
pages answer. An administrator places a frozen hold from the page (a delete is then 423) and
releases it. Screenshots go to the browser artifacts folder (tests/deploy/test_browser.py);
``media-page-1400`` and ``history-diff-1400`` there are the pictures docs/media-page.png and
docs/history-diff.png are taken from."""

from __future__ import annotations

import io
import os
import re
import subprocess
import time
from urllib.parse import urlsplit

import pytest
from PIL import Image

from tests.content.test_previews import bomb_png
from tests.deploy.test_browser import artifacts, browser  # noqa: F401  (module-scoped fixtures)
from tests.support.processes import REPO, fetch
from tests.support.servers import PASSWORD, Server

pytestmark = pytest.mark.e2e

AXE = REPO / "tests" / "support" / "vendor" / "axe-core-4.11.0" / "axe.min.js"
AXE_RUN = """
const done = arguments[arguments.length - 1];
axe.run(document, {resultTypes: ['violations']}).then(
    r => done(r.violations.filter(v => ['serious', 'critical'].includes(v.impact))
        .map(v => [v.id, v.impact, v.nodes.slice(0, 3).map(n => n.target.join(' '))])),
    e => done([['axe failed', String(e), []]]));
"""
# Elements of the page that must fit in the window (no sideways scrolling of the page for them).
OVERFLOW_JS = """
return Array.from(document.querySelectorAll(arguments[0])).filter(
    el => el.getBoundingClientRect().right > document.documentElement.clientWidth + 1).map(el => el.id);
"""
# One manage.py shell (each Django start costs seconds): the three staff accounts, and the 300 MB TIFF
# registered where it lies (manage.py ingest --in-place reads it once for its checksum).
SETUP = """
from django.contrib.auth.models import Group, User
from django.core.management import call_command
for name, group in (("wanda", "writers"), ("rita", "readers"), ("ada", "admins")):
    user = User.objects.create_user(name, password={password!r}, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
call_command(
    "ingest", {tiff!r}, "--store", "FilesystemStore:big", "--create-store", "--pid-type", "pidtype",
    "--pid", "name", "--in-place", "--no-progress",
)
"""
TIFF_BYTES = 300 * 1024 * 1024
THUMBS = 50


def png(size=(480, 320)) -> bytes:
    image = Image.new("RGB", size, (240, 240, 240))
    for x in range(size[0]):
        for y in range(0, size[1], 4):
            image.putpixel((x, y), (x % 256, 80, 200 - y % 200))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def sparse_tiff(path, size: int = TIFF_BYTES) -> None:
    """A TIFF of ``size`` bytes that takes almost no disk: a small real TIFF, then a hole."""
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, format="TIFF")
    path.write_bytes(out.getvalue())
    os.truncate(path, size)


@pytest.fixture(scope="module")
def server():
    server = Server("mediastore-mediapage-", 1, DJANGO_SECURE_COOKIES="false")
    try:
        folder = server.workdir / "data" / "stores" / "big"
        folder.mkdir(parents=True)
        sparse_tiff(folder / "big.tif")
        server.manage("shell", "-c", SETUP.format(password=PASSWORD, tiff=str(folder / "big.tif")))
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def media(server) -> dict[str, int]:
    """pic (a PNG, its metadata changed twice), bomb (a decompression bomb PNG), notes (CSV), the
    docs' demo media, and big.tif (300 MB, from the server fixture); {pid: admin pk}."""
    session, base = server.session, server.base
    store = {"type": "FilesystemStore", "bucket": "products"}

    def upload(pid: str, data: bytes, content_type: str, **fields) -> None:
        server.create(pid, store, **fields)
        response = session.put(
            f"{base}/api/media/{pid}/content", data=data, headers={"Content-Type": content_type}, timeout=60
        )
        assert response.status_code == 200, response.text

    upload(
        "pic",
        png(),
        "image/png",
        metadata={"sample": {"depth": 5, "site": "A"}, "cruise": "EN-1"},
        tags=["raw"],
    )
    for data in (
        {"sample": {"depth": 10, "site": "A"}, "cruise": "EN-1"},
        {"sample": {"depth": 10}, "ok": True},
    ):
        response = session.put(
            f"{base}/api/media/update/metadata", json=[{"pid": "pic", "data": data}], timeout=30
        )
        assert response.status_code == 200 and not response.json()["failures"], response.text
    upload("bomb", bomb_png(), "image/png")
    upload("notes", b"depth,temperature\n5,12.5\n10,11.0\n", "text/csv")
    upload("10.1234/demo.1", png((64, 48)), "image/png")  # the pid the docs' recipe asks for
    for n in range(THUMBS):  # a list page of PNG thumbnails
        upload(f"thumb-{n:02d}", png((48 + n, 32)), "image/png", tags=["thumbs"])
    dump = session.get(f"{base}/api/media/dump", timeout=60).json()
    assert {m["pid"] for m in dump} >= {"pic", "bomb", "notes", "big.tif"}
    return {m["pid"]: m["pk"] for m in dump}


def booted_workers(server) -> int:
    return len(re.findall(r"Booting worker", (server.workdir / "gunicorn.log").read_text()))


def log_in(browser, base: str, username: str) -> None:  # noqa: F811
    browser.driver.delete_all_cookies()
    browser.open(f"{base}/admin/login/?next=/admin/", None)
    browser.one("#id_username").send_keys(username)
    browser.one("#id_password").send_keys(PASSWORD)
    browser.one('#login-form [type="submit"]').click()
    browser.wait(lambda d: urlsplit(d.current_url).path == "/admin/")


def axe_violations(browser) -> list:  # noqa: F811
    if not browser.js("return typeof axe !== 'undefined'"):
        browser.js(AXE.read_text())
    browser.driver.set_script_timeout(120)
    return browser.driver.execute_async_script(AXE_RUN)


def check_widths(browser, label: str, selectors: str) -> None:  # noqa: F811
    """At 1400 and at 400 px: no serious accessibility violation, nothing of ours wider than the
    window; a screenshot of each."""
    for width in (1400, 400):
        browser.driver.set_window_size(width, 1000)
        browser.wait(lambda d, w=width: d.execute_script("return window.innerWidth") <= w)
        assert axe_violations(browser) == [], (label, width)
        assert browser.js(OVERFLOW_JS, selectors) == [], (label, width)
        browser.shot(f"{label}-{width}")
    browser.driver.set_window_size(1400, 1000)


def test_writer_sees_preview_and_history_and_reverts(server, browser, media):  # noqa: F811
    base = server.base
    log_in(browser, base, "wanda")
    browser.open(f"{base}/admin/media/media/?o=1", None)
    thumbs = browser.css("img.ms-thumb")
    assert len(thumbs) == len(media)
    for thumb in thumbs:  # lazy: each loads once scrolled into view
        browser.js("arguments[0].scrollIntoView({block: 'center'})", thumb)
        browser.wait(lambda d, t=thumb: d.execute_script("return arguments[0].complete", t))
    assert all(browser.js("return arguments[0].naturalWidth", t) > 0 for t in thumbs)  # none broken
    browser.open(f"{base}/admin/media/media/?tags_all=thumbs", None)
    thumbs = browser.css("img.ms-thumb")
    assert len(thumbs) == THUMBS
    for thumb in thumbs:
        browser.js("arguments[0].scrollIntoView({block: 'center'})", thumb)
        browser.wait(lambda d, t=thumb: d.execute_script("return arguments[0].complete", t))
    # Real thumbnails of PNGs (WebP, as wide as the list's square), not the no-preview placeholder.
    sizes = [browser.js("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", t) for t in thumbs]
    assert all(width > height > 0 for width, height in sizes), sizes
    browser.js("window.scrollTo(0, 0)")
    browser.shot("media-list")

    browser.open(f"{base}/admin/media/media/{media['pic']}/change/", None)
    assert browser.document_status() == 200
    image = browser.one("#ms-preview img")
    browser.wait(lambda d: d.execute_script("return arguments[0].complete", image))
    assert browser.js("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", image) == [480, 320]
    history = browser.one("#ms-history").text
    assert "Version 3: changed" in history and "Version 4: changed" in history
    v4 = browser.one("#ms-version-4").text
    assert "sample.depth" not in v4 and "sample.site removed A" in v4 and "cruise removed EN-1" in v4
    assert "ok added — true" in v4
    assert "sample.depth changed 5 10" in browser.one("#ms-version-3").text
    check_widths(browser, "media-page", "#ms-preview, #ms-metadata, #ms-copies, #ms-history")
    browser.shot("history-diff-1400", show=browser.one("#ms-version-4"))

    browser.one("#ms-version-3 a.ms-revert").click()  # back to version 3: depth 10, site A
    browser.wait(lambda d: "/history/" in d.current_url)
    assert browser.one('input[name="_revert"]').get_attribute("value") == "Revert to version 3"
    check_widths(browser, "revert-confirmation", "#revert-fields-box")
    assert server.media("pic")["metadata"] == {"sample": {"depth": 10}, "ok": True}  # nothing yet
    browser.one('input[name="_revert"]').click()
    browser.wait(lambda d: urlsplit(d.current_url).path.endswith(f"/{media['pic']}/change/"))
    assert "Reverted" in browser.one(".messagelist").text
    after = server.media("pic")
    assert after["metadata"] == {"sample": {"depth": 10, "site": "A"}, "cruise": "EN-1"}
    assert after["version"] == "5"
    assert "revert to version 3" in browser.one("#ms-version-5").text
    browser.shot("after-revert")


def test_reader_sees_previews_and_history_and_no_action(server, browser, media):  # noqa: F811
    base = server.base
    log_in(browser, base, "rita")
    browser.open(f"{base}/admin/media/media/{media['pic']}/change/", None)
    assert browser.document_status() == 200
    image = browser.one("#ms-preview img")
    browser.wait(lambda d: d.execute_script("return arguments[0].complete", image))
    assert browser.js("return arguments[0].naturalWidth", image) == 480
    assert "Version 3: changed" in browser.one("#ms-history").text
    assert not browser.css("a.ms-revert") and not browser.css('input[name="_save"], input[name="_continue"]')
    assert not browser.css(".deletelink")
    check_widths(browser, "reader-media-page", "#ms-preview, #ms-metadata, #ms-copies, #ms-history")
    browser.open(f"{base}/admin/media/media/{media['notes']}/change/", "reader-text-preview")
    assert browser.one("#ms-preview pre").text == "depth,temperature\n5,12.5\n10,11.0"


def test_an_admin_places_a_hold_from_the_page_and_releases_it(server, browser, media):  # noqa: F811
    base = server.base
    log_in(browser, base, "ada")
    browser.open(f"{base}/admin/media/media/{media['notes']}/change/", None)
    assert "Not on hold." in browser.one("#ms-hold").text
    browser.one("#ms-hold a").click()
    browser.wait(lambda d: urlsplit(d.current_url).path.endswith("/hold/"))
    browser.one("#id_reason").send_keys("case 21: keep for the review")
    browser.one("#id_freeze").click()
    check_widths(browser, "hold-form", "#ms-hold-now, #ms-hold-place")
    browser.one('input[name="_place"]').click()
    browser.wait(lambda d: urlsplit(d.current_url).path.endswith(f"/{media['notes']}/change/"))
    assert "Placed a hold" in browser.one(".messagelist").text
    assert "On hold (frozen) until released: case 21: keep for the review." in browser.one("#ms-hold").text
    hold = server.media("notes")["hold"]
    assert hold["reason"] == "case 21: keep for the review" and hold["freeze"] and hold["by"] == "ada"
    refused = server.session.delete(f"{base}/api/media/notes", timeout=30)
    assert refused.status_code == 423, refused.text
    browser.shot("media-page-held")

    browser.one("#ms-hold a").click()
    browser.wait(lambda d: urlsplit(d.current_url).path.endswith("/hold/"))
    browser.one('input[name="_release"]').click()
    browser.wait(lambda d: urlsplit(d.current_url).path.endswith(f"/{media['notes']}/change/"))
    assert "Not on hold." in browser.one("#ms-hold").text and server.media("notes")["hold"] is None


def test_a_bomb_and_a_300_mb_tiff_get_no_preview_and_the_worker_stays_up(server, media):
    """One worker serves everything here: it must answer "no preview" for both, from the images'
    headers and sizes, and go on answering (the log shows no worker booted again)."""
    session, base = server.session, server.base
    workers = booted_workers(server)
    timings = {}
    for pid, reason in (
        ("bomb", "no preview: the image declares 100000 x 100000 pixels, more than 50000000"),
        ("big.tif", f"no preview: {TIFF_BYTES} bytes, more than MEDIASTORE_PREVIEW_MAX_BYTES"),
    ):
        started = time.monotonic()
        response = session.get(f"{base}/api/media/{pid}/preview", timeout=60)
        timings[pid] = time.monotonic() - started
        assert response.status_code == 415 and response.json()["detail"] == reason, response.text
    assert session.get(f"{base}/api/media/big.tif", timeout=30).json()["size"] == TIFF_BYTES
    admin = fetch(f"{base}/admin/login/")  # a page of the same worker
    assert admin.status_code == 200
    assert session.get(f"{base}/api/media/pic/preview?size=64", timeout=60).status_code == 200
    assert booted_workers(server) == workers
    print(f"\nno-preview answers (s): {timings}")  # a figure for the report, not a test


def test_the_docs_recipe_answers_a_thumbnail(server, media, tmp_path):
    """The sh block of docs/admin.md's "Previews" section, as written there, against this server."""
    text = (REPO / "docs" / "admin.md").read_text().split("\n## Previews", 1)[1]
    block = text.split("```sh\n", 1)[1].split("```", 1)[0]
    assert re.search(r"^MS=", block, re.M)
    token = server.session.headers["Authorization"]
    done = subprocess.run(
        ["bash", "-euc", re.sub(r"^MS=.*$", "", block, count=1, flags=re.M)],
        cwd=tmp_path,
        env={**os.environ, "MS": server.base, "A": f"Authorization: {token}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["200", "image/webp"]
    assert Image.open(tmp_path / "preview.webp").size == (64, 48)


def test_an_unknown_media_page_is_404_not_500(server, browser, media):  # noqa: F811
    log_in(browser, server.base, "wanda")
    browser.open(f"{server.base}/admin/media/media/{max(media.values()) + 100}/preview/?size=64", None)
    assert browser.document_status() == 404
