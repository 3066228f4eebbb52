"""``/api/quotas`` (administrators) and ``/api/usage``."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Status

from mediastore.auth import require_admin
from mediastore.permissions import ADMIN, VIEW_QUOTA
from quotas import selectors, services
from quotas.schemas import QuotaIn, QuotaOut, UsageOut

router = Router(tags=["quotas"])


@router.get("/quotas", response=list[QuotaOut], summary="Quotas and their use")
def quota_list(request: HttpRequest):
    """Every quota with what it counts now. A quota limits the primary copies of media (replicas do
    not count): of one store (`user` null), of one account (`store` null: the media it owns in
    every store), of an account in a store (both set), or of every media (both null)."""
    return selectors.quota_list()


@router.put("/quotas", response={200: QuotaOut, 204: None}, summary="Set or remove a quota")
def quota_put(request: HttpRequest, payload: QuotaIn):
    """Create the quota of (`store`, `user`) or replace its limits; 200 with it. Both limits null
    removes it: 204. 404 for an unknown store or user. A write that would take a quota past a limit
    is refused with 507 naming the quota, its limit and its use, and stores nothing; lowering a
    limit below the use refuses further growth but deletes nothing."""
    quota = services.quota_put(**payload.dict())
    if quota is None:
        return Status(204, None)
    return selectors.quota_out(quota)


@router.get("/usage", response=list[UsageOut], summary="Bytes and media per store and owner")
def usage(request: HttpRequest, user: str | None = None, store: int | None = None):
    """Bytes and media of the primary copies per store and owner, counted in the transaction of
    every write. Your own rows; administrators (the permission `quotas.view_quota` and a token of
    the scope `admin`) get everyone's, `user=` one account's (`user=` empty: media without owner),
    and anyone else asking for another account's gets 403. `store=` keeps one store's rows."""
    own = request.auth.get_username()
    if user is None:
        user = None if _is_admin(request) else own
    elif user != own:
        require_admin(request, VIEW_QUOTA)
    return selectors.usage_list(user=user, store=store)


def _is_admin(request: HttpRequest) -> bool:
    return request.auth.has_perm(VIEW_QUOTA) and ADMIN in request.api_token.scope_list
