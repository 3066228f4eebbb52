import pytest

from identifiers.models import IdentifierType
from tests.conftest import error_message, media_body

pytestmark = pytest.mark.django_db


def test_create_get_list(api):
    response = api.post("/api/identifier", {"name": "doi", "pattern": r"10\.\d+/\S+"})
    assert response.status_code == 200
    assert response.json() == {"name": "doi", "pattern": r"10\.\d+/\S+"}
    assert api.get("/api/identifier/doi").json() == {"name": "doi", "pattern": r"10\.\d+/\S+"}
    api.post("/api/identifier", {"name": "any"})
    assert api.get("/api/identifier/list").json() == [
        {"name": "any", "pattern": ""},
        {"name": "doi", "pattern": r"10\.\d+/\S+"},
    ]


def test_create_is_idempotent_when_identical_and_409_otherwise(api):
    assert api.post("/api/identifier", {"name": "a", "pattern": "x+"}).status_code == 200
    assert api.post("/api/identifier", {"name": "a", "pattern": "x+"}).status_code == 200
    response = api.post("/api/identifier", {"name": "a", "pattern": "y+"})
    assert "another pattern" in error_message(response, 409)
    assert IdentifierType.objects.get(pk="a").pattern == "x+"


def test_invalid_regex_is_422(api):
    response = api.post("/api/identifier", {"name": "a", "pattern": "(unclosed"})
    assert error_message(response).startswith("invalid pattern '(unclosed'")
    assert not IdentifierType.objects.exists()


@pytest.mark.parametrize("name", ["", "has space", "a/b", "-lead", "x" * 65])
def test_bad_names_are_422(api, name):
    assert api.post("/api/identifier", {"name": name}).status_code == 422


def test_get_unknown_is_404(api):
    response = api.get("/api/identifier/nope")
    assert response.status_code == 404
    assert response.json() == {"detail": "IdentifierType 'nope' not found"}


def test_put_changes_pattern(api):
    api.post("/api/identifier", {"name": "a", "pattern": "x+"})
    response = api.put("/api/identifier", {"name": "a", "pattern": "y+"})
    assert response.status_code == 204 and response.content == b""
    assert api.get("/api/identifier/a").json()["pattern"] == "y+"
    assert api.put("/api/identifier", {"name": "b", "pattern": ""}).status_code == 404
    assert api.put("/api/identifier", {"name": "a", "pattern": "("}).status_code == 422


def test_delete(api):
    api.post("/api/identifier", {"name": "a"})
    assert api.delete("/api/identifier/a").status_code == 204
    assert api.get("/api/identifier/a").status_code == 404
    assert api.delete("/api/identifier/a").status_code == 404


def test_delete_refused_while_used_as_pid_type_or_identifier_key(api, id_types):
    assert (
        api.post("/api/media", media_body("m1", identifiers={"bin": "D20240101T000000_IFCB001"})).status_code
        == 200
    )
    for name, word in [("local", "pid_type"), ("bin", "identifier key")]:
        response = api.delete(f"/api/identifier/{name}")
        assert word in error_message(response, 409)
    assert api.delete("/api/media/m1").status_code == 204
    assert api.delete("/api/identifier/bin").status_code == 204
