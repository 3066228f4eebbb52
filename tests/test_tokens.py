"""Tokens: scoped, expiring tokens a user makes for themselves (POST/GET/DELETE /api/tokens,
manage.py create_token); expired tokens say so; purge_tokens deletes expired tokens; the admin lists
tokens (per user too) with name, scopes, age, last use and expiry, never the token."""

from __future__ import annotations

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from mediastore.models import ApiToken
from mediastore.tokens import MAX_EXPIRES_IN
from tests.conftest import PASSWORD, ApiClient, create_media, error_message
from tests.permissions_support import role

pytestmark = pytest.mark.django_db


@pytest.fixture
def tokens(user):
    """Three of alice's tokens: fresh and unused, old and used, expired; clear tokens by name."""
    now = timezone.now()
    clear = {}
    for name in ("fresh", "old", "expired"):
        row, clear[name] = ApiToken.objects.issue(user)
    ApiToken.objects.filter(prefix=clear["old"][:8]).update(
        created=now - timedelta(days=3, seconds=5), last_used=now - timedelta(hours=2, seconds=5)
    )
    ApiToken.objects.filter(prefix=clear["expired"][:8]).update(
        created=now - timedelta(days=40), expires=now - timedelta(days=10)
    )
    ApiToken.objects.filter(prefix=clear["fresh"][:8]).update(expires=now + timedelta(days=30))
    return clear


def purge(*args: str) -> str:
    out = StringIO()
    call_command("purge_tokens", *args, stdout=out)
    return out.getvalue()


def test_purge_tokens_deletes_only_expired_tokens(tokens):
    assert purge() == "Deleted 1 expired token(s).\n"
    assert sorted(row.prefix for row in ApiToken.objects.all()) == sorted(
        [tokens["fresh"][:8], tokens["old"][:8]]
    )
    for name in ("fresh", "old"):
        assert ApiClient(tokens[name]).get("/api/identifier/list").status_code == 200
    assert purge() == "Deleted 0 expired token(s).\n"


def test_purge_tokens_dry_run_deletes_nothing(tokens):
    assert purge("--dry-run") == "1 expired token(s) would be deleted (dry run).\n"
    assert ApiToken.objects.count() == 3


def test_a_token_expiring_now_is_expired_for_the_api_and_the_purge(user):
    row, clear = ApiToken.objects.issue(user)
    ApiToken.objects.filter(pk=row.pk).update(expires=timezone.now())
    assert ApiClient(clear).get("/api/identifier/list").status_code == 401
    assert purge() == "Deleted 1 expired token(s).\n"


@pytest.fixture
def admin_client_logged(client, django_user_model):
    django_user_model.objects.create_superuser("root", "root@example.org", "pw")
    client.login(username="root", password="pw")
    return client


def rows(page: str) -> dict[str, str]:
    """Each result row's HTML, keyed by the token prefix shown in it."""
    found = {}
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", page, flags=re.S):
        for prefix in re.findall(r">([A-Za-z0-9_-]{8})<", row):
            found[prefix] = row
    return found


def test_admin_token_list_shows_age_last_use_and_expiry(admin_client_logged, tokens):
    response = admin_client_logged.get("/admin/mediastore/apitoken/")
    assert response.status_code == 200
    page = response.content.decode()
    for header in ("Age", "Last use", "Expired"):
        assert f">{header}<" in page
    listed = rows(page)
    fresh, old, expired = (listed[tokens[name][:8]] for name in ("fresh", "old", "expired"))
    assert "never" in fresh and 'alt="False"' in fresh
    assert "3\xa0days" in old and "2\xa0hours ago" in old and 'alt="False"' in old
    assert "1\xa0month" in expired and 'alt="True"' in expired


def test_admin_token_list_filters_expired_tokens(admin_client_logged, tokens):
    expired = rows(admin_client_logged.get("/admin/mediastore/apitoken/?expired=yes").content.decode())
    assert set(expired) == {tokens["expired"][:8]}
    valid = rows(admin_client_logged.get("/admin/mediastore/apitoken/?expired=no").content.decode())
    assert set(valid) == {tokens["fresh"][:8], tokens["old"][:8]}


# -- /api/tokens ---------------------------------------------------------------------------------


def make(client: ApiClient, **body):
    return client.post("/api/tokens", {"name": "ifcb-7", "scopes": ["read"], **body})


@pytest.fixture
def reader(django_user_model) -> ApiClient:
    """A user in readers, with a login token."""
    user = django_user_model.objects.create_user(username="rita", password=PASSWORD)
    user.groups.add(role("readers"))
    return ApiClient(
        ApiClient().post("/api/login", {"username": "rita", "password": PASSWORD}).json()["token"]
    )


def test_a_made_token_is_shown_once_and_works_within_its_scopes(api, user, id_types):
    create_media(api, "m1")
    before = timezone.now()
    response = make(api, name="ifcb-7 uploads", scopes=["write", "read", "write"], expires_in=3600)
    assert response.status_code == 201, response.content
    made = response.json()
    assert set(made) == {"id", "token", "name", "scopes", "expires"}
    assert made["name"] == "ifcb-7 uploads" and made["scopes"] == ["read", "write"]
    row = ApiToken.objects.get(pk=made["id"])
    assert row.key_hash != made["token"] and made["token"] not in row.key_hash
    assert timedelta(seconds=3598) < row.expires - before <= timedelta(seconds=3600)
    assert made["expires"] == row.expires.isoformat().replace("+00:00", "Z")

    scoped = ApiClient(made["token"])
    assert scoped.get("/api/media/m1").status_code == 200
    assert scoped.put_content("m1", b"bytes").status_code == 200
    refused = scoped.delete("/api/media/m1")
    assert refused.status_code == 403
    assert "scope 'delete'" in refused.json()["detail"] and "media.delete_media" in refused.json()["detail"]
    listed = api.get("/api/tokens")
    assert listed.status_code == 200
    assert made["token"] not in listed.content.decode() and row.key_hash not in listed.content.decode()


def test_the_list_shows_only_the_callers_tokens_with_their_details(api, user, reader):
    made = make(api, name="nightly", scopes=["read", "delete"], expires_in=60).json()
    make(reader, name="someone else's")
    listed = api.get("/api/tokens").json()
    assert [item["name"] for item in listed] == ["nightly", "login"]
    first = listed[0]
    assert set(first) == {"id", "name", "prefix", "scopes", "created", "expires", "last_used"}
    assert first["id"] == made["id"] and first["scopes"] == ["read", "delete"]
    assert first["prefix"] == made["token"][:8] and first["expires"] == made["expires"]
    assert first["last_used"] is None and listed[1]["last_used"] is not None
    assert listed[1]["scopes"] == ["admin"] and listed[1]["expires"] is None  # the login token


def test_null_or_absent_expiry_means_never(api, user):
    assert make(api, expires_in=None).json()["expires"] is None
    assert api.post("/api/tokens", {"name": "n", "scopes": ["read"]}).json()["expires"] is None


@pytest.mark.parametrize("expires_in", [0, -5, MAX_EXPIRES_IN + 1, 10**30])
def test_expiry_out_of_bounds_is_422(api, user, expires_in):
    assert "expires_in must be" in error_message(make(api, expires_in=expires_in))
    assert ApiToken.objects.count() == 1  # only the login token


@pytest.mark.parametrize("expires_in", ["60", True, 1.5])
def test_expiry_that_is_not_a_whole_number_is_422(api, user, expires_in):
    assert make(api, expires_in=expires_in).status_code == 422
    assert ApiToken.objects.count() == 1


def test_the_longest_expiry_is_accepted(api, user):
    assert make(api, expires_in=MAX_EXPIRES_IN).status_code == 201


def test_a_token_cannot_outlive_the_expiring_token_that_makes_it(api, user):
    maker = ApiClient(make(api, name="admin for a day", scopes=["admin"], expires_in=86400).json()["token"])
    for longer in ({"expires_in": None}, {}, {"expires_in": 2 * 86400}):
        refused = make(maker, **longer)
        assert refused.status_code == 422
        assert "must not outlast the token making this one" in error_message(refused)
    assert ApiToken.objects.count() == 2  # the login token and the day token, nothing more
    shorter = make(maker, scopes=["read"], expires_in=3600)
    assert shorter.status_code == 201
    # a login token still makes tokens of any lifetime, even when logins expire
    ApiToken.objects.filter(name="login").update(expires=timezone.now() + timedelta(hours=12))
    assert make(api, expires_in=None).status_code == 201


def test_the_login_tokens_name_is_reserved(api, user):
    """Otherwise an expiring scoped token could make a token named 'login' and pass for one."""
    for name in ("login", " Login "):
        assert "reserved" in error_message(make(api, name=name))


@pytest.mark.parametrize(
    "scopes,sentence",
    [
        (["read", "wizard"], "unknown scope 'wizard'"),
        ([], "at least one"),
        (["READ"], "unknown scope 'READ'"),
    ],
)
def test_unknown_or_no_scopes_are_422(api, user, scopes, sentence):
    assert sentence in error_message(make(api, scopes=scopes))


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_a_name_is_needed(api, user, name):
    assert "name must be" in error_message(make(api, name=name))


def test_a_scope_the_account_lacks_is_refused_naming_it(reader):
    sentence = error_message(make(reader, scopes=["read", "write"]))
    assert "scope 'write' refused" in sentence and "media.add_media" in sentence
    assert make(reader, scopes=["read"]).status_code == 201
    assert make(reader, scopes=["admin"]).json()["scopes"] == ["admin"]  # everything a reader may do: read


def test_an_account_in_no_group_may_make_only_admin_tokens(django_user_model):
    django_user_model.objects.create_user(username="nobody", password=PASSWORD)
    login = ApiClient(
        ApiClient().post("/api/login", {"username": "nobody", "password": PASSWORD}).json()["token"]
    )
    assert "scope 'read' refused" in error_message(make(login, scopes=["read"]))
    assert make(login, scopes=["admin"]).status_code == 201


@pytest.mark.parametrize("scope", ["read", "write", "delete"])
def test_only_login_or_admin_tokens_make_tokens(api, user, scope):
    """A read token must not mint a write token (nor any token)."""
    limited = ApiClient(make(api, scopes=[scope]).json()["token"])
    refused = limited.post("/api/tokens", {"name": "more", "scopes": ["write"]})
    assert refused.status_code == 403 and "scope 'admin'" in refused.json()["detail"]
    assert limited.get("/api/tokens").status_code == 403
    admin = ApiClient(make(api, scopes=["admin"]).json()["token"])
    assert make(admin, scopes=["write"]).status_code == 201


def test_revoking_a_token_stops_it_at_once(api, user):
    made = make(api).json()
    scoped = ApiClient(made["token"])
    assert scoped.get("/api/identifier/list").status_code == 200
    response = api.delete(f"/api/tokens/{made['id']}")
    assert response.status_code == 204 and response.content == b""
    assert scoped.get("/api/identifier/list").json() == {"detail": "Unauthorized"}
    assert api.delete(f"/api/tokens/{made['id']}").status_code == 404
    assert [item["name"] for item in api.get("/api/tokens").json()] == ["login"]


def test_another_users_token_is_404_and_keeps_working(api, user, reader):
    theirs = make(reader).json()
    response = api.delete(f"/api/tokens/{theirs['id']}")
    assert response.status_code == 404
    assert response.json() == {"detail": f"API token '{theirs['id']}' not found"}
    assert ApiClient(theirs["token"]).get("/api/identifier/list").status_code == 200
    assert api.delete("/api/tokens/999999").status_code == 404


def test_a_scoped_token_can_revoke_itself_with_logout(api, user):
    made = make(api, scopes=["read"]).json()
    assert ApiClient(made["token"]).post("/api/logout").status_code == 204
    assert not ApiToken.objects.filter(pk=made["id"]).exists()


def test_login_tokens_are_named_login_and_have_every_right_of_the_account(user, token):
    row = ApiToken.objects.get(user=user)
    assert (row.name, row.scope_list) == ("login", ["admin"])


# -- expired tokens ------------------------------------------------------------------------------


def test_an_expired_token_is_401_naming_when_it_expired(user, token):
    expired_at = (timezone.now() - timedelta(minutes=5)).replace(microsecond=0)
    ApiToken.objects.filter(user=user).update(expires=expired_at)
    response = ApiClient(token).get("/api/identifier/list")
    assert response.status_code == 401
    assert response.json() == {"detail": f"token expired at {expired_at.isoformat().replace('+00:00', 'Z')}"}
    unknown = ApiClient("no-such-token").get("/api/identifier/list")
    assert unknown.status_code == 401 and unknown.json() == {"detail": "Unauthorized"}


def test_an_expired_token_of_an_inactive_user_is_just_unauthorized(user, token):
    ApiToken.objects.filter(user=user).update(expires=timezone.now() - timedelta(minutes=5))
    user.is_active = False
    user.save()
    assert ApiClient(token).get("/api/identifier/list").json() == {"detail": "Unauthorized"}


# -- manage.py create_token ----------------------------------------------------------------------


def create_token(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("create_token", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    "expires_in,seconds", [("90d", 90 * 86400), ("12h", 12 * 3600), ("30m", 1800), ("45s", 45), ("600", 600)]
)
def test_create_token_prints_a_working_token_once(user, expires_in, seconds):
    before = timezone.now()
    out, err = create_token("--user", "alice", "--scopes", "read,write", "--expires-in", expires_in)
    after = timezone.now()
    clear = out.strip()
    row = ApiToken.objects.get(prefix=clear[:8])
    assert row.scope_list == ["read", "write"] and row.user == user
    # to the whole second, counted down: it may fall after before + seconds when a second began
    # while the command ran, never after after + seconds
    lifetime = timedelta(seconds=seconds)
    assert before + lifetime - timedelta(seconds=1) < row.expires <= after + lifetime
    assert clear not in err and f"Token {row.pk}" in err
    assert ApiClient(clear).get("/api/identifier/list").status_code == 200
    assert ApiClient(clear).delete("/api/identifier/x").status_code == 403


def test_create_token_never_expires_by_default_or_with_never(user):
    for extra in ([], ["--expires-in", "never"]):
        out, _ = create_token("--user", "alice", "--scopes", "admin", "--name", "instrument", *extra)
        row = ApiToken.objects.get(prefix=out.strip()[:8])
        assert row.expires is None and row.name == "instrument"


@pytest.mark.parametrize(
    "args,message",
    [
        (["--user", "ghost", "--scopes", "read"], "no user named 'ghost'"),
        (["--user", "rita", "--scopes", "read,write"], "scope 'write' refused"),
        (["--user", "rita", "--scopes", "read,sudo"], "unknown scope 'sudo'"),
        (["--user", "rita", "--scopes", "read", "--expires-in", "soon"], "is not a duration"),
        (["--user", "rita", "--scopes", "read", "--expires-in", "0d"], "expires_in must be"),
        (["--user", "rita", "--scopes", "read", "--expires-in", "4000d"], "expires_in must be"),
    ],
)
def test_create_token_refuses_clearly(reader, args, message):
    with pytest.raises(CommandError, match=message) as refused:
        create_token(*args)
    assert refused.value.returncode == 1  # manage.py exits with it
    assert ApiToken.objects.filter(name="made with manage.py create_token").count() == 0


# -- the admin -----------------------------------------------------------------------------------


def test_admin_lists_name_and_scopes_never_the_token(admin_client_logged, api, user):
    made = make(api, name="ifcb-7 uploads", scopes=["read", "write"]).json()
    row = ApiToken.objects.get(pk=made["id"])
    page = admin_client_logged.get("/admin/mediastore/apitoken/").content.decode()
    listed = rows(page)[made["token"][:8]]
    assert "ifcb-7 uploads" in listed and "read,write" in listed
    for url in ("/admin/mediastore/apitoken/", f"/admin/mediastore/apitoken/{row.pk}/change/"):
        page = admin_client_logged.get(url).content.decode()
        assert made["token"] not in page and row.key_hash not in page


def test_admin_user_page_lists_and_revokes_the_users_tokens(admin_client_logged, api, user):
    made = make(api, name="ifcb-7 uploads", scopes=["read"], expires_in=600).json()
    url = f"/admin/auth/user/{user.pk}/change/"
    page = admin_client_logged.get(url).content.decode()
    assert "ifcb-7 uploads" in page and made["token"][:8] in page and made["token"] not in page
    assert ApiToken.objects.get(pk=made["id"]).key_hash not in page

    form = admin_form(page)
    prefix = "api_tokens"
    index = next(
        i for i in range(int(form[f"{prefix}-TOTAL_FORMS"])) if form[f"{prefix}-{i}-id"] == str(made["id"])
    )
    form[f"{prefix}-{index}-DELETE"] = "on"
    response = admin_client_logged.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert not ApiToken.objects.filter(pk=made["id"]).exists()
    assert ApiClient(made["token"]).get("/api/identifier/list").status_code == 401
    assert ApiToken.objects.filter(user=user, name="login").exists()  # the other token stays


def admin_form(page: str) -> dict[str, str]:
    """The values of the change form's inputs and selected options (enough to save it unchanged)."""
    form: dict[str, str] = {}
    for tag in re.findall(r"<input[^>]*>", page):
        name = re.search(r'name="([^"]+)"', tag)
        if name is None or 'type="submit"' in tag:
            continue
        if ('type="checkbox"' in tag) and "checked" not in tag:
            continue
        value = re.search(r'value="([^"]*)"', tag)
        form[name.group(1)] = value.group(1) if value else ""
    for select, body in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', page, flags=re.S):
        chosen = re.findall(r'<option value="([^"]*)"[^>]*selected', body)
        if chosen:
            form[select] = chosen[0]
    return form
