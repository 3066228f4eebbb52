"""S3 endpoint URLs as they may be shown: never with credentials in them."""

from __future__ import annotations


def without_userinfo(url: str) -> str:
    """``url`` with everything up to its last ``@`` after the scheme removed.

    Stricter than ``urlsplit``, which ends the host part at the first ``/``: a secret containing
    ``/`` (S3 secrets do) in ``http://KEY:SECRET@host`` would otherwise stay in the "path".
    """
    scheme, separator, rest = url.partition("://")
    if not separator:
        return url.rpartition("@")[2]
    return f"{scheme}://{rest.rpartition('@')[2]}"


def has_userinfo(url: str) -> bool:
    """Whether ``url`` may carry credentials (any ``@``: an S3 endpoint URL never needs one)."""
    return "@" in url
