"""Scoped, expiring API tokens that a user makes for themselves (``/api/tokens``, ``manage.py
create_token``): the rules for scopes and expiry, and the row edits.

Which operations a scope allows is ``mediastore.permissions``'s business; here a token may only be
given scopes that give it something within its account's permissions, and a bounded lifetime.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from django.utils import timezone

from mediastore.errors import NotFound, RuleViolation
from mediastore.models import ApiToken
from mediastore.permissions import ADMIN, SCOPE_PERMISSIONS, SCOPES

# Long enough for an instrument deployed for years, short enough that a forgotten token still ends.
MAX_EXPIRES_IN = 10 * 365 * 24 * 3600
LOGIN_TOKEN_NAME = "login"  # what POST /api/login names its tokens; no other token may be named so
NAME_MAX_LENGTH = ApiToken._meta.get_field("name").max_length
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+)([smhd]?)")


def checked_scopes(user, scopes: list[str]) -> list[str]:
    """``scopes`` without repeats, in the order of ``SCOPES``; RuleViolation (422) for an empty list,
    an unknown scope, or one of which ``user`` holds none of the permissions (a token of that scope
    could do nothing). ``admin`` is every right of the account, so any account may have it."""
    if not scopes:
        raise RuleViolation(f"scopes must name at least one of {', '.join(SCOPES)}")
    unknown = [scope for scope in scopes if scope not in SCOPES]
    if unknown:
        raise RuleViolation(f"unknown scope {unknown[0]!r}; the scopes are {', '.join(SCOPES)}")
    for scope in SCOPES:
        if scope in scopes and scope != ADMIN and not any(user.has_perm(p) for p in SCOPE_PERMISSIONS[scope]):
            raise RuleViolation(
                f"scope {scope!r} refused: your account has none of its permissions "
                f"({', '.join(sorted(SCOPE_PERMISSIONS[scope]))}); an administrator can add it to a group "
                "that has them"
            )
    return [scope for scope in SCOPES if scope in scopes]


def checked_expiry(expires_in: int | None, now: datetime) -> datetime | None:
    """The expiry of a token made ``now`` that lives ``expires_in`` seconds (None: never expires),
    to the whole second; RuleViolation (422) outside 1 s .. ``MAX_EXPIRES_IN``."""
    if expires_in is None:
        return None
    if not 1 <= expires_in <= MAX_EXPIRES_IN:
        raise RuleViolation(
            f"expires_in must be a number of seconds from 1 to {MAX_EXPIRES_IN} (10 years), or null for a "
            f"token that never expires; got {expires_in!r}"
        )
    return (now + timedelta(seconds=expires_in)).replace(microsecond=0)


def parse_duration(text: str) -> int | None:
    """Seconds of ``90d``, ``12h``, ``30m``, ``45s`` or ``3600`` (seconds); None for ``never``.
    RuleViolation for anything else (the bounds are ``checked_expiry``'s)."""
    text = text.strip().lower()
    if text == "never":
        return None
    match = _DURATION.fullmatch(text)
    if match is None:
        raise RuleViolation(f"expiry {text!r} is not a duration: use e.g. 90d, 12h, 30m, 3600s or never")
    return int(match.group(1)) * DURATION_UNITS[match.group(2) or "s"]


def token_create(
    *, user, name: str, scopes: list[str], expires_in: int | None, not_after: datetime | None = None
) -> tuple[ApiToken, str]:
    """A new token of ``user`` (the row and the clear token, which is not stored and cannot be
    shown again). RuleViolation (422) for an empty, overlong or reserved name, bad scopes or
    expiry, or an expiry after ``not_after`` (see ``lifetime_bound``)."""
    name = name.strip()
    if not name or len(name) > NAME_MAX_LENGTH:
        raise RuleViolation(f"name must be 1 to {NAME_MAX_LENGTH} characters")
    if name.lower() == LOGIN_TOKEN_NAME:
        raise RuleViolation(f"name {name!r} is reserved for the tokens POST /api/login makes")
    if not user.is_active:
        raise RuleViolation(f"user {user.get_username()!r} is inactive: its tokens would not work")
    wanted = checked_scopes(user, scopes)
    expires = checked_expiry(expires_in, timezone.now())
    if not_after is not None and (expires is None or expires > not_after):
        raise RuleViolation(
            f"expires_in must not outlast the token making this one, which expires at "
            f"{not_after.isoformat()}: at most {max(int((not_after - timezone.now()).total_seconds()), 0)} "
            "seconds (a longer-lived token needs a login token or manage.py create_token)"
        )
    return ApiToken.objects.issue(user, name=name, scopes=wanted, expires=expires)


def lifetime_bound(maker: ApiToken | None) -> datetime | None:
    """The latest expiry a token made with the token ``maker`` may have: a token made with
    ``POST /api/tokens`` cannot outlive it, or an expiring token could make itself a lasting one.
    A login token (made with the account's password) and a session have no bound: they are how a
    person makes an instrument's long-lived token."""
    if maker is None or maker.name == LOGIN_TOKEN_NAME:
        return None
    return maker.expires


def token_list(*, user) -> list[ApiToken]:
    """Every token of ``user``, newest first, expired ones included (until purge_tokens)."""
    return list(ApiToken.objects.filter(user=user).order_by("-created", "-pk"))


def token_revoke(*, user, token_id: int) -> None:
    """Delete a token of ``user``; it fails at the next request on every worker (tokens are read
    from the database on every request, never cached). NotFound for an unknown id or another
    user's token, alike, so ids of others' tokens cannot be probed."""
    deleted, _ = ApiToken.objects.filter(user=user, pk=token_id).delete()
    if not deleted:
        raise NotFound("API token", token_id)
