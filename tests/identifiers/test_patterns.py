"""Identifier patterns run on RE2 (linear time): hostile patterns cannot pin a worker, unsupported
features are refused with a sentence, and changing a pattern in use re-checks the stored values."""

from __future__ import annotations

import pytest

from identifiers.models import IdentifierType
from media.models import Media
from tests.conftest import error_message, media_body

pytestmark = pytest.mark.django_db

HOSTILE_PATTERN = "(a+)+$"
HOSTILE_PID = "a" * 40 + "b"


def test_catastrophic_backtracking_pattern_answers_at_once(api):
    """Regression: type pattern `(a+)+$` and a pid of 40 `a`s and a `b` backtracked for hours in
    Python's `re` (four such creates pinned all four gunicorn workers). On RE2 it is a plain 422."""
    assert api.post("/api/identifier", {"name": "evil", "pattern": HOSTILE_PATTERN}).status_code == 200
    response = api.post("/api/media", media_body(HOSTILE_PID, pid_type="evil"))
    assert "does not match the pattern of identifier type 'evil'" in error_message(response)
    assert api.post("/api/media", media_body("a" * 40, pid_type="evil")).status_code == 200


def test_hostile_identifier_value_and_retype_answer_at_once(api, id_types):
    """The same pattern checks identifier values and retypes (PATCH pid_type)."""
    api.post("/api/identifier", {"name": "evil", "pattern": HOSTILE_PATTERN})
    response = api.post("/api/media", media_body("m1", identifiers={"evil": HOSTILE_PID}))
    assert response.status_code == 422
    assert api.post("/api/media", media_body(HOSTILE_PID)).status_code == 200
    assert api.patch(f"/api/media/{HOSTILE_PID}", {"pid_type": "evil"}).status_code == 422
    assert Media.objects.get(pid=HOSTILE_PID).pid_type_id == "local"


@pytest.mark.parametrize(
    ("pattern", "feature"),
    [
        (r"(a)\1", "backreference"),
        (r"(?P<x>a)(?P=x)", "named backreference"),
        (r"(?=a)a", "lookahead"),
        (r"(?!b)a", "negative lookahead"),
        (r"(?<=a)b", "lookbehind"),
        (r"a++", "possessive quantifier"),
        (r"a\Z", r"\Z"),
    ],
)
def test_patterns_re2_cannot_run_are_422_saying_why(api, pattern, feature):
    """Regression: any pattern Python's `re` accepted was stored, including backtracking-only ones."""
    for method in ("POST", "PUT"):
        if method == "PUT":
            api.post("/api/identifier", {"name": "t", "pattern": "x"})
        response = api.request(method, "/api/identifier", {"name": "t", "pattern": pattern})
        error = error_message(response)
        assert "feature the linear-time engine (RE2) does not support" in error, error
        assert "backreferences, lookaround" in error
    assert IdentifierType.objects.get(pk="t").pattern == "x"


def test_invalid_and_over_long_patterns_are_422(api):
    response = api.post("/api/identifier", {"name": "u", "pattern": "[a-"})
    assert error_message(response).startswith("invalid pattern '[a-'")
    response = api.post("/api/identifier", {"name": "v", "pattern": "a" * 5000})
    assert "longer than 4096 characters" in error_message(response)


def test_full_match_semantics_stay(api):
    api.post("/api/identifier", {"name": "alt", "pattern": "a|ab"})
    api.post("/api/identifier", {"name": "digits", "pattern": r"\d{3}"})
    assert api.post("/api/media", media_body("ab", pid_type="alt")).status_code == 200
    assert api.post("/api/media", media_body("abc", pid_type="alt")).status_code == 422
    assert api.post("/api/media", media_body("123", pid_type="digits")).status_code == 200
    assert api.post("/api/media", media_body("1234", pid_type="digits")).status_code == 422
    assert api.post("/api/media", media_body("x123", pid_type="digits")).status_code == 422


@pytest.fixture
def in_use(api, id_types):
    """Type `code` (pattern `[a-z]+[0-9]*`) as pid_type of three media and as identifier of one."""
    api.post("/api/identifier", {"name": "code", "pattern": "[a-z]+[0-9]*"})
    for pid in ("abc", "abc1", "xyz22"):
        assert api.post("/api/media", media_body(pid, pid_type="code")).status_code == 200
    body = media_body("other", identifiers={"code": "q7"})
    assert api.post("/api/media", body).status_code == 200


def test_pattern_change_that_stored_values_break_is_409_with_count_and_examples(api, in_use):
    """Regression: PUT /api/identifier replaced the pattern of a type in use without looking, leaving
    stored pids and identifiers that no longer matched their type."""
    response = api.put("/api/identifier", {"name": "code", "pattern": "[a-z]+"})
    assert response.status_code == 409
    [error] = response.json()["detail"]
    assert error["count"] == 3
    assert {(e["field"], e["value"], e["pid"]) for e in error["examples"]} == {
        ("pid", "abc1", "abc1"),
        ("pid", "xyz22", "xyz22"),
        ("identifiers", "q7", "other"),
    }
    assert "3 stored value(s)" in error["error"] and "force=true" in error["error"]
    assert IdentifierType.objects.get(pk="code").pattern == "[a-z]+[0-9]*"


def test_examples_are_a_few_and_the_count_is_all(api, id_types):
    api.post("/api/identifier", {"name": "n", "pattern": "[0-9]+"})
    api.post("/api/media/create", [media_body(str(i), pid_type="n") for i in range(20)])
    response = api.put("/api/identifier", {"name": "n", "pattern": "1[0-9]*"})
    assert response.status_code == 409
    [error] = response.json()["detail"]
    assert error["count"] == 9  # 0, 2..9; 1 and 10..19 still match
    assert len(error["examples"]) == 5


def test_batches_cover_the_whole_table(in_use):
    """The stored values are read in batches; a batch size of 1 still sees every row."""
    from identifiers.services import stored_mismatches

    assert stored_mismatches("code", "[a-z]+", batch=1)[0] == 3
    assert stored_mismatches("code", "[a-z]+", batch=2)[0] == 3
    assert stored_mismatches("code", "[a-z]+[0-9]*", batch=1) == (0, [])


def test_force_true_changes_the_pattern_anyway(api, in_use):
    response = api.put("/api/identifier?force=true", {"name": "code", "pattern": "[a-z]+"})
    assert response.status_code == 204
    assert IdentifierType.objects.get(pk="code").pattern == "[a-z]+"
    assert Media.objects.filter(pid_type_id="code").count() == 3  # stored values stay
    assert api.post("/api/media", media_body("new1", pid_type="code")).status_code == 422


def test_compatible_change_passes(api, in_use):
    for pattern in ("[a-z]+[0-9]{0,2}", "[a-z0-9]+", ""):
        response = api.put("/api/identifier", {"name": "code", "pattern": pattern})
        assert response.status_code == 204, response.content
        assert IdentifierType.objects.get(pk="code").pattern == pattern


def test_hostile_value_stored_before_is_checked_in_linear_time(api, id_types):
    """A pid stored under an empty pattern, then a change to `(a+)+$`: the re-check runs on RE2."""
    api.post("/api/identifier", {"name": "free", "pattern": ""})
    assert api.post("/api/media", media_body(HOSTILE_PID, pid_type="free")).status_code == 200
    response = api.put("/api/identifier", {"name": "free", "pattern": HOSTILE_PATTERN})
    assert response.status_code == 409
    assert response.json()["detail"][0]["examples"][0]["value"] == HOSTILE_PID


def test_swagger_describes_the_recheck_and_force(api):
    operation = api.get("/api/openapi.json").json()["paths"]["/api/identifier"]["put"]
    assert "409" in operation["description"] and "force=true" in operation["description"]
    assert any(p["name"] == "force" for p in operation["parameters"])


@pytest.mark.parametrize("name", ["a.b:c-d", "x__y"])
def test_recheck_finds_identifier_values_under_names_with_dots_colons_and_underscores(api, id_types, name):
    """Identifier keys are JSON object keys; names with `.`, `:`, `-` or `__` must still be looked up
    as one key (not as a path or a Django lookup)."""
    api.post("/api/identifier", {"name": name, "pattern": ""})
    assert api.post("/api/media", media_body("m1", identifiers={name: "v-1"})).status_code == 200
    response = api.put("/api/identifier", {"name": name, "pattern": "v"})
    assert response.status_code == 409
    assert response.json()["detail"][0]["examples"] == [{"pid": "m1", "field": "identifiers", "value": "v-1"}]
    assert api.put("/api/identifier", {"name": name, "pattern": r"v-\d"}).status_code == 204
