"""A large base64 upload's string is decoded straight from the raw body (mediastore/parser.py's
large members), and every body the shortcut does not fit gets the answer the full parse gives."""

from __future__ import annotations

import base64
import json
import random

import pytest
from django.test import RequestFactory
from django.urls import resolve

from media.models import Media
from mediastore.parser import LARGE_BODY, JsonParser, large_member
from tests.conftest import error_message, media_body

pytestmark = pytest.mark.django_db

DATA = random.Random(13).randbytes(LARGE_BODY)  # its base64 is over the threshold
ENCODED = base64.b64encode(DATA).decode("ascii")


def post_text(api, text: str | bytes):
    return api.client.post(
        "/api/upload",
        data=text,
        content_type="application/json",
        headers={"Authorization": f"Bearer {api.token}"},
    )


def stored_bytes(api, pid: str) -> bytes:
    response = api.client.get(f"/api/media/{pid}/content", headers={"Authorization": f"Bearer {api.token}"})
    assert response.status_code == 200, response
    return b"".join(response.streaming_content)


def parse(text: str | bytes, path: str = "/api/upload"):
    request = RequestFactory().post(path, data=text, content_type="application/json")
    request.resolver_match = resolve(path)  # as Django's handler sets it before the view runs
    return request, JsonParser().parse_body(request)


def test_the_base64_member_is_decoded_from_the_raw_body():
    body = {"mediadata": media_body("big1"), "base64": ENCODED, "content_type": "image/png"}
    request, parsed = parse(json.dumps(body))
    assert parsed["base64"] != ENCODED and parsed["base64"].startswith("mediastore-large-member-")
    assert parsed["mediadata"] == media_body("big1") and parsed["content_type"] == "image/png"
    assert large_member(request, parsed["base64"]) == DATA
    assert large_member(request, parsed["base64"]) is None  # handed over once
    assert request.body == b""  # the raw body is let go of


@pytest.mark.parametrize(
    "text, taken",
    [
        # JSON may escape "/" as "\/": the string has a backslash, so it is parsed as text
        (json.dumps({"mediadata": media_body("e1"), "base64": ENCODED}).replace("/", "\\/"), False),
        # the same name inside the metadata, before the member: the member is still found
        (json.dumps({"mediadata": media_body("e1", metadata={"base64": "QUJD"}), "base64": ENCODED}), True),
        # a large string named base64 that is not the top-level member
        (json.dumps({"mediadata": media_body("e1", metadata={"base64": ENCODED}), "base64": "QUJD"}), False),
        # the top-level member as a number, after a large nested one
        (json.dumps({"mediadata": media_body("e1", metadata={"base64": ENCODED}), "base64": 1}), False),
    ],
    ids=["escaped-slash", "nested-name-first", "nested-large", "not-a-string"],
)
def test_the_parse_is_the_full_parse_whether_or_not_the_shortcut_fits(text, taken):
    request, parsed = parse(text)
    decoded = large_member(request, parsed["base64"])
    assert (decoded is not None) == taken
    if taken:
        assert decoded == DATA
        parsed["base64"] = ENCODED
    assert parsed == json.loads(text)


def test_only_the_upload_view_takes_the_shortcut():
    text = json.dumps({"username": "a", "password": "b", "base64": ENCODED})
    for path in ("/api/login", "/api/media"):
        request, parsed = parse(text, path)
        assert parsed == json.loads(text)
        assert getattr(request, "_mediastore_large_members", None) is None  # nothing decoded or held


def test_a_member_that_is_not_most_of_the_body_is_parsed_as_text():
    """A body the shortcut would fit only after parsing a large rest is parsed once, as text."""
    text = json.dumps(
        {"mediadata": media_body("e1", metadata={"pad": "x" * (2 * LARGE_BODY)}), "base64": ENCODED}
    )
    request, parsed = parse(text)
    assert parsed == json.loads(text)
    assert large_member(request, parsed["base64"]) is None


@pytest.mark.parametrize("spacing", ['"base64":"', '"base64" :\n\t"', '"base64"\r\n:  "'])
def test_a_large_upload_stores_exactly_its_bytes(api, id_types, spacing):
    head = json.dumps({"mediadata": media_body("big2")})[:-1]
    response = post_text(api, f'{head}, {spacing}{ENCODED}", "size": {len(DATA)}}}')
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "READY", "presigned_put": None, "pid": "big2"}
    assert stored_bytes(api, "big2") == DATA
    media = Media.objects.get(pid="big2")
    assert media.size == len(DATA)


def test_the_member_may_come_before_the_media(api, id_types):
    text = '{"base64": "' + ENCODED + '", "mediadata": ' + json.dumps(media_body("big3")) + "}"
    assert post_text(api, text).status_code == 200
    assert stored_bytes(api, "big3") == DATA


def test_invalid_base64_in_a_large_body_is_422_and_stores_nothing(api, id_types):
    bad = ENCODED[:1000] + "*" + ENCODED[1001:]
    response = post_text(api, json.dumps({"mediadata": media_body("bad1"), "base64": bad}))
    assert "base64 is invalid" in error_message(response)
    assert not Media.objects.filter(pid="bad1").exists()


def test_stray_bits_in_a_large_body_are_422(api, id_types):
    assert ENCODED.endswith("==")  # the last group holds one byte; its second character 4 spare bits
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    flipped = alphabet[alphabet.index(ENCODED[-3]) ^ 1]
    stray = ENCODED[:-3] + flipped + "=="
    assert base64.b64decode(stray) == DATA  # Python's decoder would take it silently
    response = post_text(api, json.dumps({"mediadata": media_body("bad2"), "base64": stray}))
    assert "stray bits" in error_message(response)


def test_size_must_match_in_a_large_body(api, id_types):
    body = {"mediadata": media_body("bad3"), "base64": ENCODED, "size": len(DATA) + 1}
    response = post_text(api, json.dumps(body))
    assert f"base64 decodes to {len(DATA)} bytes, but size says {len(DATA) + 1}" in error_message(response)


def test_a_duplicate_member_in_a_large_body_is_422(api, id_types):
    head = json.dumps({"mediadata": media_body("dup1"), "base64": ENCODED})[:-1]
    response = post_text(api, head + ', "base64": "QUJD"}')
    assert "duplicate key 'base64'" in error_message(response)
    assert not Media.objects.filter(pid="dup1").exists()


def test_a_control_character_in_a_large_string_is_a_json_error(api, id_types):
    text = json.dumps({"mediadata": media_body("ctl1"), "base64": ENCODED})
    cut = text.index(ENCODED) + 5000
    response = post_text(api, text[:cut] + "\n" + text[cut:])  # a raw line break: not JSON
    assert response.status_code == 400, response.content
    assert not Media.objects.filter(pid="ctl1").exists()


def test_a_large_body_that_is_not_json_elsewhere_is_400(api, id_types):
    text = json.dumps({"mediadata": media_body("syn1"), "base64": ENCODED})
    response = post_text(api, text[:-1] + ",}")
    assert response.status_code == 400, response.content
