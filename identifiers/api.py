"""/api/identifier... endpoints."""

from django.http import HttpRequest
from ninja import Query, Router, Status

from identifiers import services
from identifiers.models import IdentifierType
from identifiers.schemas import IdentifierTypeSchema

router = Router(tags=["identifier types"])


@router.get("/identifier/list", response=list[IdentifierTypeSchema], summary="List identifier types")
def identifier_list(request: HttpRequest):
    """All identifier types with their patterns, by name."""
    return IdentifierType.objects.all()


@router.get("/identifier/{name}", response=IdentifierTypeSchema, summary="Get one identifier type")
def identifier_get(request: HttpRequest, name: str):
    """One identifier type by name; 404 if there is none."""
    return services.identifier_type_get(name)


@router.post("/identifier", response=IdentifierTypeSchema, summary="Create an identifier type")
def identifier_create(request: HttpRequest, payload: IdentifierTypeSchema):
    """Create an identifier type. Posting an identical one again is harmless (200, same answer);
    the same name with another pattern is 409 (change a pattern with PUT). An invalid regular
    expression or name is 422. Media can only be created once their pid_type exists."""
    return services.identifier_type_create(name=payload.name, pattern=payload.pattern, user=request.auth)


@router.put("/identifier", response={204: None}, summary="Change the pattern of an identifier type")
def identifier_update(
    request: HttpRequest,
    payload: IdentifierTypeSchema,
    force: bool = Query(False, description="Change the pattern even if stored values would not match it."),
):
    """Replace the pattern of an existing type (404 if unknown; an invalid pattern, or one the
    linear-time engine cannot run, is 422). The values already stored under the type (pids of media
    with this pid_type and identifier values under this key) are checked against the new pattern
    first: if any would no longer match, the answer is 409 with `count` and a few `examples`
    (`{pid, field, value}`) and nothing changes, unless `force=true` is given, which changes the
    pattern anyway and leaves those values as they are. The check reads every media of the type,
    so on a large table it takes a while (time linear in the number and length of the values)."""
    services.identifier_type_update(
        name=payload.name, pattern=payload.pattern, force=force, user=request.auth
    )
    return Status(204, None)


@router.delete("/identifier/{name}", response={204: None}, summary="Delete an identifier type")
def identifier_delete(request: HttpRequest, name: str):
    """Delete a type; 404 if unknown, 409 while any media uses it as pid_type or identifier key."""
    services.identifier_type_delete(name=name, user=request.auth)
    return Status(204, None)
