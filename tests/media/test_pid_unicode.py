"""Pids and identifier values in Unicode NFC; bidirectional controls and invisible characters
refused; pids stored before in another form stay reachable as they are.

Regression: `café` written with a combining accent (NFD, as macOS file names are) and with a single
`é` (NFC) were two different media that look the same, and a pid holding U+202E (RIGHT-TO-LEFT
OVERRIDE) was shown in an order other than the one it is stored in.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

import pytest

from importer.plan import media_problem
from importer.source import OldMedia
from media.models import Media
from tests.conftest import create_media, error_message, media_body

pytestmark = pytest.mark.django_db

NFC = unicodedata.normalize("NFC", "café-é")
NFD = unicodedata.normalize("NFD", "café-é")
assert NFC != NFD

INVISIBLE = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"]
INVISIBLE += ["\u200e", "\u200f", "\u061c", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]
# characters that draw nothing without being zero-width controls: soft hyphen, grapheme joiner,
# Mongolian vowel separator, invisible times, Hangul filler, a tag character
INVISIBLE += ["\u00ad", "\u034f", "\u180e", "\u2062", "\u3164", "\U000e0041"]


def url(pid: str, tail: str = "") -> str:
    return f"/api/media/{quote(pid)}{tail}"


@pytest.fixture
def old_nfd(api, id_types) -> Media:
    """A media stored with an NFD pid (written straight to the table, as before this rule)."""
    create_media(api, "seed", tags=["t"])
    Media.objects.filter(pid="seed").update(pid=NFD)
    return Media.objects.get(pid=NFD)


def test_a_new_pid_is_stored_in_nfc_and_found_by_either_form(api, id_types):
    body = create_media(api, NFD)
    assert body["pid"] == NFC
    assert list(Media.objects.values_list("pid", flat=True)) == [NFC]
    for pid in (NFC, NFD):
        assert api.get(url(pid)).json()["pid"] == NFC
    assert error_message(api.post("/api/media", media_body(NFC)), 409)


def test_the_two_forms_in_one_bulk_create_are_one_pid(api, id_types):
    response = api.post("/api/media/create", [media_body(NFC), media_body(NFD)])
    assert "given twice" in error_message(response, 409)
    assert not Media.objects.exists()


def test_a_pid_stored_before_stays_reachable(api, old_nfd):
    assert api.get(url(NFD)).json()["pid"] == NFD  # exactly as stored
    assert api.get(url(NFC)).json()["pid"] == NFD  # and by its NFC form
    assert [m["pid"] for m in api.post("/api/media/read", [NFC, NFD]).json()] == [NFD]
    body = api.patch("/api/media/update/tags", [{"pid": NFC, "tags": ["u"]}]).json()
    assert body == {"successes": [NFC], "failures": []}
    assert Media.objects.get(pk=old_nfd.pk).tag_list == ["t", "u"]
    assert api.get(url(NFC, "/history")).status_code == 200
    # Creating it again in NFC is creating the same pid.
    assert "already exists" in error_message(api.post("/api/media", media_body(NFC)), 409)
    assert api.delete(url(NFC)).status_code == 204
    assert not Media.objects.exists()


def test_the_exact_pid_is_found_first(api, old_nfd):
    """Two media stored before as NFD and NFC twins: each opens by its own form."""
    create_media(api, "twin")
    Media.objects.filter(pid="twin").update(pid=NFC)
    assert api.get(url(NFD)).json()["pk"] == old_nfd.pk
    assert api.get(url(NFC)).json()["pk"] != old_nfd.pk
    body = api.post("/api/media/delete", [NFD]).json()
    assert body == {"successes": [NFD], "failures": []}
    assert list(Media.objects.values_list("pid", flat=True)) == [NFC]


def test_a_pid_stored_before_can_be_renamed_to_its_nfc_form(api, old_nfd):
    assert api.patch(url(NFD), {"new_pid": NFC}).status_code == 204
    assert Media.objects.get(pk=old_nfd.pk).pid == NFC


def test_a_retype_keeps_a_pid_stored_before_as_it_is(api, old_nfd):
    api.post("/api/identifier", {"name": "other", "pattern": ""})
    assert api.patch(url(NFD), {"pid_type": "other"}).status_code == 204
    assert Media.objects.get(pk=old_nfd.pk).pid == NFD


def test_identifier_values_are_stored_in_nfc(api, id_types):
    assert api.post("/api/identifier", {"name": "title", "pattern": ""}).status_code == 200
    body = create_media(api, "m1", identifiers={"title": NFD})
    assert body["identifiers"] == {"title": NFC}
    answer = api.put("/api/media/update/identifiers", [{"pid": "m1", "identifiers": {"title": NFD + "2"}}])
    assert answer.json()["failures"] == []
    assert Media.objects.get(pid="m1").identifiers == {"title": NFC + "2"}
    # A repeated pid_type identifier equals the pid once both are NFC.
    assert create_media(api, NFC, identifiers={"local": NFD})["identifiers"] == {}


@pytest.mark.parametrize("char", INVISIBLE, ids=[f"U+{ord(c):04X}" for c in INVISIBLE])
def test_bidi_controls_and_zero_width_characters_are_refused(api, id_types, char):
    code = f"U+{ord(char):04X}"
    assert code in error_message(api.post("/api/media", media_body(f"ab{char}c")))
    assert api.post("/api/identifier", {"name": "title", "pattern": ""}).status_code == 200
    assert code in error_message(api.post("/api/media", media_body("m1", identifiers={"title": f"x{char}"})))
    create_media(api, "m1")
    assert code in error_message(api.patch("/api/media/m1", {"new_pid": f"m{char}2"}))
    failure = api.put("/api/media/update/identifiers", [{"pid": "m1", "identifiers": {"title": char}}])
    assert code in failure.json()["failures"][0]["msg"]
    assert list(Media.objects.values_list("pid", "identifiers")) == [("m1", {})]


def test_the_importer_normalises_and_refuses_as_the_api_does():
    old = OldMedia(1, NFD, "local", 1, "k1", "READY", {"title": NFD}, {})
    assert media_problem(old, {"local": "", "title": ""}) is None
    assert (old.pid, old.identifiers) == (NFC, {"title": NFC})
    old = OldMedia(2, "a\u202eb", "local", 1, "k2", "READY", {}, {})
    assert "U+202E" in media_problem(old, {"local": ""})
    old = OldMedia(3, "ok", "local", 1, "k3", "READY", {"title": "\u200b"}, {})
    assert "U+200B" in media_problem(old, {"local": "", "title": ""})


def test_search_finds_pids_and_identifiers_in_either_form(api, old_nfd):
    assert api.post("/api/identifier", {"name": "title", "pattern": ""}).status_code == 200
    create_media(api, NFC + "-new", identifiers={"title": NFD})  # stored NFC
    Media.objects.filter(pk=old_nfd.pk).update(identifiers={"title": NFD})  # stored before, NFD
    for pattern in (NFC + "*", NFD + "*"):
        for body in ({"pid": pattern}, {"identifiers": {"title": pattern}}, {"identifier": pattern}):
            found = api.post("/api/media/search", body).json()
            assert sorted(m["pk"] for m in found) == sorted(Media.objects.values_list("pk", flat=True)), body
    assert api.post("/api/media/search", {"pid": "caf*"}).json()  # ASCII patterns as before
