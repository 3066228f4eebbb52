"""Encryption of secrets stored in the database (S3 secret keys), with rotatable keys.

Keys come from ``MEDIASTORE_FIELD_KEYS``: Fernet keys, newest first. Values are encrypted with the
first key and decrypted with any of them, so a new key can be put in front, the stored values
re-encrypted (``manage.py reencrypt_secrets``), and the old key dropped afterwards.

With no key configured, one derived from ``DJANGO_SECRET_KEY`` is used. That key is also always
accepted for decryption (never for encryption) when keys are configured, so moving from the
derived key to configured keys is: set ``MEDIASTORE_FIELD_KEYS``, run ``reencrypt_secrets``; only
then may ``DJANGO_SECRET_KEY`` change.

Stored values carry the prefix ``fernet:``; a value without it is a clear value from before
encryption, which the migration and ``reencrypt_secrets`` encrypt.
"""

from __future__ import annotations

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

PREFIX = "fernet:"
_DERIVATION_INFO = b"mediastore field encryption"


class UnreadableSecret(ImproperlyConfigured):
    """A stored secret that none of the configured keys decrypts (a key was dropped too early)."""


def parse_keys(raw: str) -> list[str]:
    """The comma-separated Fernet keys of ``raw``, checked; ValueError naming the bad position.

    The message never repeats a key.
    """
    keys = [item.strip() for item in raw.split(",") if item.strip()]
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except ValueError:
            raise ValueError(
                f"key number {position} is not a Fernet key (32 bytes in url-safe base64, 44 characters; "
                'make one with: python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())")'
            ) from None
    return keys


def derived_key(secret_key: str) -> bytes:
    """A Fernet key derived from Django's ``SECRET_KEY`` (HKDF-SHA256)."""
    material = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_DERIVATION_INFO).derive(
        secret_key.encode()
    )
    return base64.urlsafe_b64encode(material)


def _keys() -> list[bytes]:
    """Encryption key first, then every key accepted for decryption."""
    configured = [key.encode() for key in getattr(settings, "MEDIASTORE_FIELD_KEYS", [])]
    derived = derived_key(settings.SECRET_KEY)
    return [*configured, derived] if derived not in configured else configured


def _multi() -> MultiFernet:
    configured = tuple(getattr(settings, "MEDIASTORE_FIELD_KEYS", []))
    return _multi_for(configured, settings.SECRET_KEY)


@functools.lru_cache(maxsize=8)
def _multi_for(configured: tuple[str, ...], secret_key: str) -> MultiFernet:
    """Built once per set of keys: the HKDF derivation costs more than decrypting a secret, and an
    S3 store's secret is decrypted on every request that touches the store."""
    return MultiFernet([Fernet(key) for key in _keys()])


def is_encrypted(stored: str) -> bool:
    return stored.startswith(PREFIX)


def encrypt(clear: str) -> str:
    """``clear`` encrypted with the newest key, with the ``fernet:`` prefix."""
    return PREFIX + _multi().encrypt(clear.encode()).decode()


def decrypt(stored: str) -> str:
    """The clear value of a stored one; a value without the prefix is returned as it is.

    Raises UnreadableSecret when no key decrypts it.
    """
    if not is_encrypted(stored):
        return stored
    try:
        return _multi().decrypt(stored.removeprefix(PREFIX).encode()).decode()
    except InvalidToken:
        raise UnreadableSecret(
            "a stored secret cannot be decrypted with MEDIASTORE_FIELD_KEYS (or the key derived from "
            "DJANGO_SECRET_KEY): was a key removed before running manage.py reencrypt_secrets?"
        ) from None


def is_current(stored: str) -> bool:
    """Whether ``stored`` is encrypted with the newest key (nothing for reencrypt_secrets to do)."""
    if not is_encrypted(stored):
        return False
    try:
        Fernet(_keys()[0]).decrypt(stored.removeprefix(PREFIX).encode())
    except InvalidToken:
        return False
    return True


def reencrypt(stored: str) -> str:
    """``stored`` (clear or encrypted with any accepted key) encrypted with the newest key."""
    return encrypt(decrypt(stored))
