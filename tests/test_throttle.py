"""Login throttling: failed logins limited per username and per client address (429, Retry-After)."""

from __future__ import annotations

import threading
import time

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher
from django.test import RequestFactory

from mediastore import env
from mediastore.cache import FileCache
from mediastore.throttle import client_address
from tests.conftest import PASSWORD, ApiClient
from tests.test_settings import run_settings

pytestmark = pytest.mark.django_db

LIMIT = 10  # the default MEDIASTORE_LOGIN_RATE, 10/m


def login(username: str, password: str, *, remote: str = "192.0.2.1", forwarded: str | None = None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return ApiClient().post("/api/login", {"username": username, "password": password}, **extra)


def assert_throttled(response) -> int:
    assert response.status_code == 429, response.content
    body = response.json()
    assert set(body) == {"detail"} and "too many failed logins" in body["detail"]
    retry_after = int(response["Retry-After"])
    assert 1 <= retry_after <= 60
    assert f"{retry_after} seconds" in body["detail"]
    return retry_after


def test_the_default_rate_is_ten_failures_per_minute(settings):
    assert settings.MEDIASTORE_LOGIN_RATE == (10, 60)


def test_failures_for_one_username_are_limited_across_addresses(user):
    for n in range(LIMIT):
        assert login("alice", "wrong", remote=f"198.51.100.{n + 1}").status_code == 401
    # Even the right password is refused now, from yet another address.
    assert_throttled(login("alice", PASSWORD, remote="198.51.100.200"))
    # The addresses themselves are not blocked: another account logs in from the first one.
    assert login("nobody", "x", remote="198.51.100.1").status_code == 401


def test_failures_from_one_address_are_limited_across_usernames(user):
    for n in range(LIMIT):
        assert login(f"user{n}", "wrong", remote="203.0.113.9").status_code == 401
    assert_throttled(login("alice", PASSWORD, remote="203.0.113.9"))
    assert login("alice", PASSWORD, remote="203.0.113.10").status_code == 200


def test_successful_logins_are_never_counted(user):
    for _ in range(LIMIT + 5):
        assert login("alice", PASSWORD).status_code == 200


def test_a_success_clears_the_usernames_count_but_not_the_addresses(user):
    for _ in range(LIMIT - 1):
        assert login("alice", "wrong", remote="192.0.2.50").status_code == 401
    assert login("alice", PASSWORD, remote="192.0.2.51").status_code == 200
    # alice's count starts again: nine more failures from other addresses are still 401.
    for n in range(LIMIT - 1):
        assert login("alice", "wrong", remote=f"192.0.2.{60 + n}").status_code == 401
    # The address 192.0.2.50 keeps its nine failures: one more and it is blocked.
    assert login("bob", "wrong", remote="192.0.2.50").status_code == 401
    assert_throttled(login("carol", "wrong", remote="192.0.2.50"))


def test_usernames_are_counted_regardless_of_case(user):
    for n in range(LIMIT):
        assert login("Alice" if n % 2 else "ALICE", "wrong", remote=f"198.51.100.{n + 1}").status_code == 401
    assert_throttled(login("alice", PASSWORD, remote="198.51.100.99"))


def test_logins_are_accepted_again_when_the_window_ends(user, settings):
    settings.MEDIASTORE_LOGIN_RATE = (2, 1)
    assert login("alice", "wrong").status_code == 401
    assert login("alice", "wrong").status_code == 401
    retry_after = assert_throttled(login("alice", PASSWORD))
    assert retry_after == 1
    deadline = time.monotonic() + 5
    while (response := login("alice", PASSWORD)).status_code == 429 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert response.status_code == 200


def test_forwarded_for_from_a_trusted_proxy_is_the_counted_address(user):
    """nginx on this host (127.0.0.1) appends the real client's address; what the client sent
    itself (left of it) changes nothing."""
    for n in range(LIMIT):
        response = login(f"user{n}", "wrong", remote="127.0.0.1", forwarded=f"10.9.9.{n}, 203.0.113.7")
        assert response.status_code == 401
    assert_throttled(login("alice", PASSWORD, remote="127.0.0.1", forwarded="203.0.113.7"))
    # Another client behind the same proxy is not affected.
    assert login("alice", PASSWORD, remote="127.0.0.1", forwarded="203.0.113.8").status_code == 200


def test_forwarded_for_from_an_untrusted_client_is_ignored(user):
    """A client talking to the server directly cannot dodge its count by inventing X-Forwarded-For."""
    for n in range(LIMIT):
        response = login(f"user{n}", "wrong", remote="198.51.100.77", forwarded=f"203.0.113.{n}")
        assert response.status_code == 401
    assert_throttled(login("alice", PASSWORD, remote="198.51.100.77", forwarded="203.0.113.250"))


@pytest.mark.parametrize(
    "remote,forwarded,expected",
    [
        ("198.51.100.1", None, "198.51.100.1"),
        ("198.51.100.1", "203.0.113.5", "198.51.100.1"),  # untrusted peer: header ignored
        ("127.0.0.1", "203.0.113.5", "203.0.113.5"),
        ("127.0.0.1", "6.6.6.6, 203.0.113.5", "203.0.113.5"),  # right-most untrusted entry
        ("::1", "2001:db8::7", "2001:db8::7"),
        ("10.0.0.2", "6.6.6.6, 203.0.113.5, 10.0.0.1", "203.0.113.5"),  # two trusted proxies
        ("127.0.0.1", None, "127.0.0.1"),  # a local client without a proxy
        ("127.0.0.1", "", "127.0.0.1"),
        ("127.0.0.1", "garbage", "127.0.0.1"),  # not an address: the trusted peer is counted
        ("127.0.0.1", "10.0.0.1", "10.0.0.1"),  # only trusted hops: the left-most of them
        ("::ffff:198.51.100.3", None, "198.51.100.3"),
    ],
)
def test_client_address(settings, monkeypatch, remote, forwarded, expected):
    monkeypatch.setenv("MEDIASTORE_TRUSTED_PROXIES", "127.0.0.1,::1,10.0.0.0/8")
    settings.MEDIASTORE_TRUSTED_PROXIES = env.get_networks("MEDIASTORE_TRUSTED_PROXIES", [])
    meta = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    assert client_address(RequestFactory().post("/api/login", **meta)) == expected


class CountingHasher(MD5PasswordHasher):
    """The test suite's MD5 hasher, counting how often a password is hashed."""

    calls = 0

    def encode(self, password, salt):
        CountingHasher.calls += 1
        return super().encode(password, salt)


@pytest.fixture
def counting_hasher(settings):
    settings.PASSWORD_HASHERS = ["tests.test_throttle.CountingHasher"]
    CountingHasher.calls = 0
    return CountingHasher


@pytest.mark.parametrize("case", ["unknown user", "wrong password", "unusable password", "inactive user"])
def test_every_failed_login_hashes_once_so_its_time_does_not_tell_whether_the_user_exists(
    django_user_model, counting_hasher, case
):
    """Django's ModelBackend hashes a dummy password for unknown usernames and for accounts without
    a usable password; here every kind of failure is shown to run the hasher exactly once, as a
    wrong password for an existing account does."""
    account = django_user_model.objects.create_user(username="dora", password=PASSWORD)
    if case == "unusable password":
        account.set_unusable_password()
    account.is_active = case != "inactive user"
    account.save()
    username, password = ("nobody", PASSWORD) if case == "unknown user" else ("dora", "wrong")
    if case == "inactive user":
        password = PASSWORD
    counting_hasher.calls = 0
    assert login(username, password).status_code == 401
    assert counting_hasher.calls == 1


def test_a_refused_login_does_not_check_the_password(django_user_model, counting_hasher):
    django_user_model.objects.create_user(username="dora", password=PASSWORD)
    for _ in range(LIMIT):
        login("dora", "wrong")
    counting_hasher.calls = 0
    assert_throttled(login("dora", PASSWORD))
    assert_throttled(login("nobody", PASSWORD))
    assert counting_hasher.calls == 0


def test_login_documents_429_with_retry_after(anon):
    operation = anon.get("/api/openapi.json").json()["paths"]["/api/login"]["post"]
    answer = operation["responses"]["429"]
    assert "Retry-After" in answer["headers"]
    assert answer["content"]["application/json"]["schema"]["$ref"].endswith("/DetailOut")
    assert "MEDIASTORE_LOGIN_RATE" in operation["description"]


@pytest.mark.parametrize(
    "raw,expected",
    [("10/m", (10, 60)), ("5/s", (5, 1)), ("100/h", (100, 3600)), ("20/5m", (20, 300)), ("3/D", (3, 86400))],
)
def test_rate_format(monkeypatch, raw, expected):
    monkeypatch.setenv("MEDIASTORE_LOGIN_RATE", raw)
    assert env.get_rate("MEDIASTORE_LOGIN_RATE", "10/m") == expected


@pytest.mark.parametrize("raw", ["10", "ten/m", "0/m", "10/x", "10/0m", "/m", "-1/m", "10/m/s"])
def test_a_bad_rate_stops_start_up(tmp_path, raw):
    result = run_settings(tmp_path, DJANGO_SECRET_KEY="k", MEDIASTORE_LOGIN_RATE=raw)
    assert result.returncode != 0
    assert f"MEDIASTORE_LOGIN_RATE={raw!r} is not a rate" in result.stderr


def test_a_bad_trusted_proxy_stops_start_up(tmp_path):
    result = run_settings(tmp_path, DJANGO_SECRET_KEY="k", MEDIASTORE_TRUSTED_PROXIES="127.0.0.1,nginx")
    assert result.returncode != 0
    assert "MEDIASTORE_TRUSTED_PROXIES: 'nginx' is not an IP address or network" in result.stderr


SHOW_CACHE = (
    "import django; django.setup(); from django.conf import settings as s; "
    "c = s.CACHES['default']; print(c['BACKEND'], c['LOCATION'])"
)


def test_the_cache_is_shared_by_all_workers(tmp_path):
    """Files under the data directory without Redis, Redis with it; never the per-process LocMemCache."""
    files = run_settings(tmp_path, SHOW_CACHE, DJANGO_SECRET_KEY="k").stdout.split()
    assert files == ["mediastore.cache.FileCache", str(tmp_path.resolve() / "cache")]
    redis = run_settings(
        tmp_path, SHOW_CACHE, DJANGO_SECRET_KEY="k", MEDIASTORE_REDIS_URL="redis://127.0.0.1:6379/3"
    ).stdout.split()
    assert redis == ["django.core.cache.backends.redis.RedisCache", "redis://127.0.0.1:6379/3"]


def test_file_cache_counts_exactly_under_concurrency(tmp_path):
    """FileBasedCache's incr is read-then-write; FileCache's lock makes concurrent increments add up."""
    shared = FileCache(str(tmp_path / "cache"), {})
    shared.add("n", 0, 60)
    threads, per_thread = 4, 50

    def work():
        own = FileCache(str(tmp_path / "cache"), {})  # as another worker would open it
        for _ in range(per_thread):
            own.add("n", 0, 60)
            own.incr("n")

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=60)
    assert shared.get("n") == threads * per_thread


def test_unreachable_counters_refuse_logins_with_503_not_500(settings, django_user_model):
    """With Redis down, login crashed with a 500; refusing (503) keeps guessing throttled."""
    django_user_model.objects.create_user(username="bob", password="right-password-1")
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",  # nothing listens on the discard port
            "OPTIONS": {"socket_connect_timeout": 1},
        }
    }
    response = ApiClient().post("/api/login", {"username": "bob", "password": "right-password-1"})
    assert response.status_code == 503, response.content
    assert "failed-login counters" in response.json()["detail"]
