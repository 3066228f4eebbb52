"""/api/media/{pid}/replicas...: the copies of a media's bytes (``content.replicas``), and
/api/rules: the replication rules that ask for them (``content.rules``).

Registered before the media router, as ``content.api`` is: ``/media/{path:pid}`` would otherwise
take ``/media/<pid>/replicas`` as a pid.
"""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Status

from content import replicas, rules
from content.schemas import ReplicaIn, ReplicaOut, RuleIn, RuleOut

router = Router(tags=["replicas"])


@router.get("/media/{path:pid}/replicas", response=list[ReplicaOut], summary="Copies of a media's bytes")
def replica_list(request: HttpRequest, pid: str):
    """The media's primary copy (`primary` true) first, then its replicas, each with its state.
    The primary's state is GOOD unless its last check or read failed (then BAD or MISSING), COPYING
    while the media is PENDING."""
    return replicas.replica_list(pid)


@router.post(
    "/media/{path:pid}/replicas", response={202: ReplicaOut}, summary="Keep one more copy of the bytes"
)
def replica_create(request: HttpRequest, pid: str, payload: ReplicaIn):
    """Ask for a copy of the media's bytes in another store: 202 with the new replica in COPYING;
    the replication worker (`manage.py replicate`) writes and checks it, then it is GOOD. A copy
    that fails stays COPYING with its `error` and is retried with backoff. 409 when the media is not
    READY or already has a copy in that store."""
    return Status(202, replicas.replica_create(pid, payload.store_config, user=request.auth))


@router.delete("/media/{path:pid}/replicas/{store_pk}", response={204: None}, summary="Remove a replica")
def replica_delete(request: HttpRequest, pid: str, store_pk: int):
    """Remove the media's replica in store `store_pk`; its bytes are removed after the commit.
    409 for the primary copy (promote another first) and for the last GOOD copy; 423 while the
    media is on hold (a hold keeps every copy)."""
    replicas.replica_delete(pid, store_pk, user=request.auth)
    return Status(204, None)


@router.post(
    "/media/{path:pid}/replicas/{store_pk}/promote",
    response=ReplicaOut,
    summary="Make a replica the primary",
)
def replica_promote(request: HttpRequest, pid: str, store_pk: int):
    """The GOOD replica in store `store_pk` becomes the media's primary copy (its `store_config`),
    and the primary a replica; no bytes are copied. One `media.moved` event. 409 unless the
    replica is GOOD. Answers the new primary copy."""
    return replicas.replica_promote(pid, store_pk, user=request.auth)


@router.get("/rules", response=list[RuleOut], summary="Replication rules")
def rule_list(request: HttpRequest):
    """Every replication rule, by name."""
    return rules.rule_list()


@router.post("/rules", response=RuleOut, summary="Make a replication rule")
def rule_create(request: HttpRequest, payload: RuleIn):
    """Every READY media matching `match` (any of its pid types, all of its tags, its primary copy
    in its store; an omitted condition matches any) must have a GOOD copy in each store of `copies`.
    The replication worker asks for the missing copies at each pass: for the media matching now,
    media made later and media that start to match (tags added). 422 naming an unknown pid type or
    store; 409 when the name is taken."""
    return rules.rule_create(
        name=payload.name,
        pid_types=payload.match.pid_type,
        tags=payload.match.tags,
        store=payload.match.store,
        copies=payload.copies,
        user=request.auth,
    )


@router.delete("/rules/{name}", response={204: None}, summary="Delete a replication rule")
def rule_delete(request: HttpRequest, name: str):
    """Forget the rule; the copies it asked for stay (remove them with
    `DELETE /api/media/{pid}/replicas/{store_pk}`). 404 for an unknown name."""
    rules.rule_delete(name)
    return Status(204, None)
