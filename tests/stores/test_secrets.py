"""S3 secret keys at rest: encrypted in the database, rotatable keys, URLs without user info."""

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from mediastore import crypto
from stores.models import S3Config
from tests.conftest import error_message, media_body
from tests.test_settings import run_settings

pytestmark = pytest.mark.django_db

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY-unique-7d1f"
S3 = {"url": "http://s3.example.test:9000", "access_key": "AKIAEXAMPLE", "secret_key": SECRET}
OLD_KEY, NEW_KEY = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def raw_secrets() -> list[str]:
    """The secret column as the database holds it (raw SQL, no model code in between)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret_key_encrypted FROM stores_s3config ORDER BY id")
        return [row[0] for row in cursor.fetchall()]


def reencrypt() -> str:
    from io import StringIO

    out = StringIO()
    call_command("reencrypt_secrets", stdout=out)
    return out.getvalue()


def test_the_database_never_holds_the_clear_secret(api):
    pk = api.post("/api/s3cfg", S3).json()["pk"]
    api.put(f"/api/s3cfg/{pk}", {**S3, "secret_key": SECRET + "-rotated"})
    [stored] = raw_secrets()
    assert stored.startswith("fernet:") and SECRET not in stored
    assert S3Config.objects.get(pk=pk).secret_key == SECRET + "-rotated"  # signing still gets it


def test_rotation_then_reencrypt_leaves_rows_readable_with_the_new_key_only(api, settings):
    settings.MEDIASTORE_FIELD_KEYS = [OLD_KEY]
    api.post("/api/s3cfg", S3)
    api.post("/api/s3cfg", {**S3, "url": "http://other.example.test", "secret_key": "second-secret"})
    for stored in raw_secrets():
        Fernet(OLD_KEY).decrypt(stored.removeprefix("fernet:").encode())

    settings.MEDIASTORE_FIELD_KEYS = [NEW_KEY, OLD_KEY]
    assert reencrypt().startswith("re-encrypted 2 S3 secret key(s) with the newest key; 0 already")
    assert reencrypt().startswith("re-encrypted 0 S3 secret key(s) with the newest key; 2 already")

    clear = []
    for stored in raw_secrets():
        token = stored.removeprefix("fernet:").encode()
        clear.append(Fernet(NEW_KEY).decrypt(token).decode())
        with pytest.raises(InvalidToken):
            Fernet(OLD_KEY).decrypt(token)
    assert clear == [SECRET, "second-secret"]
    settings.MEDIASTORE_FIELD_KEYS = [NEW_KEY]
    assert [cfg.secret_key for cfg in S3Config.objects.all()] == [SECRET, "second-secret"]


def test_a_key_removed_before_reencrypting_makes_the_secret_unreadable(api, settings):
    settings.MEDIASTORE_FIELD_KEYS = [OLD_KEY]
    api.post("/api/s3cfg", S3)
    before = raw_secrets()
    settings.MEDIASTORE_FIELD_KEYS = [NEW_KEY]
    with pytest.raises(crypto.UnreadableSecret):
        S3Config.objects.get().secret_key  # noqa: B018
    with pytest.raises(CommandError, match="cannot be decrypted.*nothing was changed"):
        reencrypt()
    assert raw_secrets() == before


def test_derived_key_then_own_key_lets_the_django_secret_key_change(api, settings):
    """Without MEDIASTORE_FIELD_KEYS the key comes from SECRET_KEY; the documented way out works."""
    settings.MEDIASTORE_FIELD_KEYS = []
    api.post("/api/s3cfg", S3)
    settings.MEDIASTORE_FIELD_KEYS = [NEW_KEY]
    assert reencrypt().startswith("re-encrypted 1 ")
    settings.SECRET_KEY = "a-completely-different-django-secret-key"
    assert S3Config.objects.get().secret_key == SECRET


def test_reencrypt_encrypts_clear_rows_left_from_before(settings):
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO stores_s3config (url, access_key, secret_key_encrypted) VALUES (%s, %s, %s)",
            ["http://legacy.test", "AK", SECRET],
        )
    assert S3Config.objects.get().secret_key == SECRET
    assert reencrypt().startswith("re-encrypted 1 ")
    [stored] = raw_secrets()
    assert stored.startswith("fernet:") and SECRET not in stored
    assert S3Config.objects.get().secret_key == SECRET


@pytest.mark.django_db(transaction=True)
def test_migration_encrypts_existing_rows_and_its_reverse_decrypts():
    """serialized_rollback: without it the flush after this test re-creates content types under new
    ids, and the next test that restores serialized rows (test_permissions) collides with them."""
    executor = MigrationExecutor(connection)
    leaves = executor.loader.graph.leaf_nodes()
    executor.migrate([("stores", "0001_initial")])
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO stores_s3config (url, access_key, secret_key) VALUES (%s, %s, %s)",
                ["http://old.test", "AK", SECRET],
            )
        executor = MigrationExecutor(connection)
        executor.migrate([("stores", "0002_encrypt_s3_secrets")])
        [stored] = raw_secrets()
        assert stored.startswith("fernet:") and SECRET not in stored
        assert crypto.decrypt(stored) == SECRET

        executor = MigrationExecutor(connection)
        executor.migrate([("stores", "0001_initial")])
        with connection.cursor() as cursor:
            cursor.execute("SELECT secret_key FROM stores_s3config")
            assert cursor.fetchall() == [(SECRET,)]
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(leaves)
    assert S3Config.objects.get().secret_key == SECRET


def test_malformed_field_key_stops_start_up_without_repeating_it(tmp_path):
    good = Fernet.generate_key().decode()
    bad = "not-a-fernet-key-but-maybe-a-secret"
    result = run_settings(tmp_path, DJANGO_SECRET_KEY="k", MEDIASTORE_FIELD_KEYS=f"{good},{bad}")
    assert result.returncode != 0
    assert "MEDIASTORE_FIELD_KEYS: key number 2 is not a Fernet key" in result.stderr
    assert bad not in result.stderr
    result = run_settings(tmp_path, DJANGO_SECRET_KEY="k", MEDIASTORE_FIELD_KEYS=f"{good}, {good}")
    assert result.returncode == 0, result.stderr


# -- URLs with user info ---------------------------------------------------------------------------

# S3 secrets may contain "/", which ends urlsplit's host part early: the secret then looks like a path.
USERINFO_URLS = [
    "http://AKIAUSER:url-secret-123@s3.example.test:9000",
    "http://AKIAUSER:url/secret-123@s3.example.test:9000",
]


@pytest.mark.parametrize("userinfo_url", USERINFO_URLS)
def test_s3cfg_with_user_info_is_422_and_never_echoed(api, userinfo_url):
    response = api.post("/api/s3cfg", {**S3, "url": userinfo_url})
    assert "user info" in error_message(response)
    assert "secret-123" not in response.content.decode()
    assert not S3Config.objects.exists()
    pk = api.post("/api/s3cfg", S3).json()["pk"]
    response = api.put(f"/api/s3cfg/{pk}", {**S3, "url": userinfo_url})
    assert response.status_code == 422 and "secret-123" not in response.content.decode()
    assert S3Config.objects.get().url == S3["url"]


@pytest.mark.parametrize("userinfo_url", USERINFO_URLS)
def test_s3_url_with_user_info_is_422_wherever_a_store_is_named(api, id_types, userinfo_url):
    S3Config.objects.create(url=userinfo_url, access_key="AK", secret_key=SECRET)  # an older row
    store = {"type": "BucketStore", "bucket": "bkt", "s3_url": userinfo_url}
    responses = [
        api.post("/api/store", store),
        api.post("/api/media", media_body("m1", store_config=store)),
        api.post("/api/media/create", [media_body("m2", store_config=store)]),
        api.post("/api/upload", {"mediadata": media_body("m3", store_config=store), "base64": "aGk="}),
    ]
    for response in responses:
        assert response.status_code == 422, response.content
        assert "secret-123" not in response.content.decode()


@pytest.mark.parametrize("userinfo_url", USERINFO_URLS)
def test_existing_url_with_user_info_is_shown_without_it(api, admin_client, userinfo_url):
    cfg = S3Config.objects.create(url=userinfo_url, access_key="AK", secret_key=SECRET)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO stores_storeconfig (type, bucket, s3cfg_id) VALUES (%s, %s, %s)",
            ["BucketStore", "bkt", cfg.pk],
        )
    bodies = [api.get(path) for path in ("/api/s3cfgs", f"/api/s3cfg/{cfg.pk}", "/api/stores")]
    assert bodies[1].json() == {
        "pk": cfg.pk,
        "url": "http://s3.example.test:9000",
        "region": "us-east-1",
        "addressing_style": "path",
    }
    assert bodies[2].json()[0]["s3_url"] == "http://s3.example.test:9000"
    change = f"/admin/stores/s3config/{cfg.pk}/change/"
    saved = admin_client.post(
        change, {"url": "http://s3.example.test:9000", "access_key": "AK2", "secret_key": ""}
    )
    assert saved.status_code == 302
    assert S3Config.objects.get().url == "http://s3.example.test:9000"
    record = S3Config.history.order_by("history_id").first()
    pages = [
        admin_client.get(url)
        for url in (
            "/admin/stores/s3config/",
            change,
            f"/admin/stores/s3config/{cfg.pk}/history/",
            f"/admin/stores/s3config/{cfg.pk}/history/{record.history_id}/",
            "/admin/stores/storeconfig/",
        )
    ]
    for response in bodies + pages:
        assert response.status_code == 200
        text = response.content.decode()
        assert "s3.example.test:9000" in text
        assert "secret-123" not in text and SECRET not in text
