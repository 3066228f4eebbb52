"""Request and response shapes of the media endpoints (field names fixed by API_CONTRACT.md)."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from ninja import Field, Schema
from pydantic import ConfigDict, StrictInt, StrictStr, ValidationError, field_validator, model_validator

from media.lifecycle import hold_out
from mediastore.errors import RuleViolation
from mediastore.limits import MAX_IN_VALUES, MAX_OFFSET, MAX_PAGE, MAX_PATH_KEYS
from mediastore.schema_utils import RequestSchema, null_means_default
from stores.schemas import StoreConfigIn, StoreConfigOut


def as_aware(value: datetime | None) -> datetime | None:
    """A time without a zone is taken as UTC (the server's and the API's zone); others are converted
    to UTC, and one out of range once converted (e.g. 9999-12-31T23:59:59-14:00, a 500 before) is a
    422."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(
            "date is out of range once converted to UTC (at most 9999-12-31T23:59:59Z)"
        ) from None


class MediaIn(RequestSchema):
    """A new media. `pid_type` and every identifier key must name an existing identifier type, and
    each value must fully match its type's pattern."""

    pid: str | None = Field(
        None,
        description="Primary ID; minted (a UUID) when absent. Stored in Unicode NFC (as are identifier "
        "values); bidirectional controls and invisible characters are refused (422 naming them).",
    )
    pid_type: str = Field(..., description="Identifier type of the pid.")
    store_config: StoreConfigIn = Field(..., description="Where the bytes will live; got or created.")
    identifiers: dict[str, str] = Field(default_factory=dict, description="More identifiers: {type: value}.")
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description="Free JSON metadata; at most `MEDIASTORE_MAX_METADATA_DEPTH` (64) levels deep (422) and "
        "`MEDIASTORE_MAX_METADATA_KB` (1024) KB as compact JSON (413).",
    )
    tags: list[str] = Field(
        default_factory=list,
        description="Tags (distinct names, at most 100 characters each); at most `MEDIASTORE_MAX_TAGS` "
        "(1000) distinct ones (422).",
    )
    expires_at: datetime | None = Field(
        None,
        description="When the media expires (ISO 8601; without a zone UTC): afterwards it answers 404 "
        "everywhere and `manage.py expire` deletes it. Absent: the store's `default_ttl` from now, if it has "
        "one, else never; `null` given explicitly: never.",
    )

    nulls_are_defaults = null_means_default("identifiers", "metadata", "tags")
    _aware = field_validator("expires_at")(as_aware)


class HoldOut(Schema):
    """A hold in force: the media cannot be deleted, have its bytes replaced, be moved or expire."""

    since: datetime = Field(..., description="When the hold was placed.")
    until: datetime | None = Field(..., description="When it ends by itself; null: when released.")
    reason: str = Field(..., description="Why the media is held (named in every 423 answer).")
    freeze: bool = Field(..., description="Metadata, tags, identifiers and pid are frozen too.")
    by: str = Field(..., description="Who placed it (username).")


class HoldIn(RequestSchema):
    """A hold: until `until` (null: until released with `DELETE /api/media/{pid}/hold`) the media cannot
    be deleted, have its bytes replaced, be moved, lose a replica, change store key or expire (423
    Locked naming the hold); with `freeze` its metadata, tags, identifiers, pid and reverts are refused
    too. Placing a hold on a held media replaces that hold."""

    until: datetime | None = Field(None, description="When the hold ends by itself (ISO 8601); null: never.")
    reason: str = Field(..., min_length=1, max_length=500, description="Why (shown in 423 answers).")
    freeze: bool = Field(False, description="Freeze the record too (metadata, tags, identifiers, pid).")

    _aware = field_validator("until")(as_aware)


class MediaOut(Schema):
    pk: int
    pid: str
    pid_type: str
    store_config: StoreConfigOut
    store_status: Literal["PENDING", "READY"]
    identifiers: dict[str, str]
    metadata: dict[str, Any]
    tags: list[str]
    mark: int = Field(..., description="Latest change number, from one sequence shared by all media.")
    version: str = Field(..., description="Revision count of this media: '1' after create.")
    size: int | None = Field(
        None,
        description="Size in bytes of the stored content, once READY; while PENDING after a presigned "
        "upload, the size declared for it (if any).",
    )
    checksum: str = Field("", description="Checksum of the stored content, e.g. `sha256:<hex>`.")
    content_type: str = Field(
        "",
        description="Media type of the stored content: as declared (`content_type` of `POST /api/upload`, "
        "the `Content-Type` of `PUT /api/media/{pid}/content`), guessed from the file name by "
        "`manage.py ingest`, and `application/octet-stream` when none was declared, whichever way the "
        "bytes came (base64, presigned upload, import). While PENDING: the declared type, or empty.",
    )
    created: datetime
    updated: datetime
    owner: str | None = Field(
        None,
        description="Username of the account that created it (its usage and quotas count it); null for "
        "media imported, made before owners were recorded, or whose account was deleted.",
    )
    expires_at: datetime | None = Field(
        None, description="When the media expires (then answers 404 and is deleted); null: never."
    )
    hold: HoldOut | None = Field(
        None, description="The hold in force (`POST /api/media/{pid}/hold`); null when none (or it ran out)."
    )

    @staticmethod
    def resolve_owner(obj) -> str | None:
        return obj.owner_id

    @staticmethod
    def resolve_hold(obj) -> dict | None:
        return hold_out(obj)

    @staticmethod
    def resolve_pid_type(obj) -> str:
        return obj.pid_type_id

    @staticmethod
    def resolve_tags(obj) -> list[str]:
        return obj.tag_list

    @staticmethod
    def resolve_version(obj) -> str:
        return str(obj.version)


def media_out_dict(media) -> dict[str, Any]:
    """``MediaOut.from_orm(media).model_dump()`` without pydantic's per-field validation, for the
    endpoints that answer pages of up to 10000 media (validation cost ~40 ms per 1000 there).
    tests/media/test_search.py checks that both give the same JSON."""
    store = media.store_config
    return {
        "pk": media.pk,
        "pid": media.pid,
        "pid_type": media.pid_type_id,
        "store_config": {"pk": store.pk, "type": store.type, "bucket": store.bucket, "s3_url": store.s3_url},
        "store_status": media.store_status,
        "identifiers": media.identifiers,
        "metadata": media.metadata,
        "tags": media.tag_list,
        "mark": media.mark,
        "version": str(media.version),
        "size": media.size,
        "checksum": media.checksum,
        "content_type": media.content_type,
        "created": media.created,
        "updated": media.updated,
        "owner": media.owner_id,
        "expires_at": media.expires_at,
        "hold": hold_out(media),
    }


class MediaPatch(RequestSchema):
    """Changes to one media; absent fields stay as they are."""

    pid: str | None = Field(None, description="Ignored on PATCH /api/media/{pid}: the path names the media.")
    new_pid: str | None = Field(None, description="Rename the media to this pid.")
    pid_type: str | None = Field(None, description="Retype the pid (checked against the type's pattern).")
    store_config: int | StoreConfigIn | None = Field(
        None, description="A store configuration pk, or a store description (got or created)."
    )
    expires_at: datetime | None = Field(
        None,
        description="A new expiry (ISO 8601 with a time zone); `null` given explicitly removes the expiry, "
        "absent leaves it.",
    )

    _aware = field_validator("expires_at")(as_aware)


class MediaBulkPatch(RequestSchema):
    pids: list[str] = Field(..., description="The media to change; `medias[i]` applies to `pids[i]`.")
    medias: list[MediaPatch]


class UpdateTags(RequestSchema):
    pid: str
    tags: list[str] = Field(
        ...,
        description="Tags to set or add; the media may carry at most `MEDIASTORE_MAX_TAGS` (1000) distinct "
        "tags afterwards, else this item fails (`ValidationError`) and the media is unchanged.",
    )


class UpdateStorekey(RequestSchema):
    pid: str
    store_key: str


class UpdateIdentifiers(RequestSchema):
    pid: str
    identifiers: dict[str, str]


class UpdateMetadata(RequestSchema):
    pid: str
    # Nullable in the document because the published schemas declare `keys` Optional (default []),
    # so their clients send null; the validator below makes it [] before any code sees it.
    keys: list[str] | None = Field(
        default_factory=list,
        description="Path into the metadata; empty: the whole metadata. `null` (or leaving `keys` out) "
        "means exactly the same as `[]`.",
    )
    data: Any = Field(
        default_factory=dict, description="The value (object or list) to set or merge; `null` means `{}`."
    )

    nulls_are_defaults = null_means_default("keys", "data")


class MediaError(Schema):
    pid: str
    error: str = Field(..., description="NotFound, ValidationError, Conflict or StorageError.")
    msg: str


class BulkResult(Schema):
    successes: list[str]
    failures: list[MediaError]


class SearchScope(Schema):
    """Filters and paging shared by `POST /api/media/search` and `GET /api/media`."""

    error_subject: ClassVar[str] = "filter"  # how error sentences name a field

    store_status: Literal["PENDING", "READY"] | None = None
    store_config: int | None = Field(None, ge=1, lt=2**63, description="Store configuration pk.")
    created_after: datetime | None = Field(None, description="Created at or after (ISO 8601; naive is UTC).")
    created_before: datetime | None = Field(None, description="Created strictly before (ISO 8601).")
    updated_after: datetime | None = Field(None, description="Last changed at or after (ISO 8601).")
    updated_before: datetime | None = Field(None, description="Last changed strictly before (ISO 8601).")
    order_by: Literal["pid", "-pid", "created", "-created", "updated", "-updated"] | None = Field(
        None, description="Sort order (`-`: descending); default: by pk, i.e. creation order."
    )
    limit: int = Field(1000, ge=0, le=MAX_PAGE, description=f"Page size (at most {MAX_PAGE}).")
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="Matches to skip.")

    @field_validator("created_after", "created_before", "updated_after", "updated_before")
    @classmethod
    def _naive_is_utc(cls, value: datetime | None) -> datetime | None:
        """Naive is UTC; others are converted to UTC (PostgreSQL refuses offsets beyond 15:59, which
        ISO 8601 allows: such a filter was a 500)."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ValueError("date is out of range once converted to UTC") from None

    @model_validator(mode="wrap")
    @classmethod
    def _refuse_as_rule_violation(cls, data: Any, handler):
        # A RuleViolation (not a ValueError) passes through pydantic and ninja untouched, so bad
        # filters answer with the contract's 422 `{"detail": [{"error": "..."}]}` naming the field.
        try:
            return handler(data)
        except ValidationError as exc:
            raise RuleViolation(filter_error_sentence(exc, cls.error_subject)) from None


class MediaSearch(SearchScope):
    """Filters of `POST /api/media/search`; every filter is optional and all given ones must hold (AND).

    Wildcards (`pid`, `identifiers`, `identifier`, metadata `wildcard`): `*` matches any run of
    characters, `?` exactly one, `\\` makes the next character literal (`\\*`, `\\?`, `\\\\`); `%` and `_`
    are ordinary characters; matching is case-sensitive and covers the whole value. A search without
    any filter (`{}` or `{"tags": []}`) finds nothing, as the earlier server did; an empty list next to
    other filters adds no condition, and null means not given. Unknown filter names are refused (422
    naming them).
    """

    model_config = ConfigDict(extra="forbid")

    tags: list[str] = Field(default_factory=list, description="Media carrying any of these tags.")
    tags_all: list[str] = Field(default_factory=list, description="Media carrying every one of these tags.")
    pid: str | None = Field(None, description="Wildcard the pid must match, e.g. `D2024*_IFCB1??`.")
    pid_type: str | list[str] | None = Field(
        None, description="Identifier type of the pid: a name or a list."
    )
    identifiers: dict[str, str] = Field(
        default_factory=dict, description="`{type: wildcard}`: the identifier of each type must match."
    )
    identifier: str | None = Field(None, description="Wildcard that the pid or any identifier value matches.")
    metadata: list[MetadataCondition] = Field(default_factory=list, description="Conditions on metadata.")

    nulls_are_defaults = null_means_default("tags", "tags_all", "identifiers", "metadata", "limit", "offset")

    error_subject: ClassVar[str] = "search filter"


class Change(Schema):
    field: str
    old: Any = None
    new: Any = None


class HistoryEntry(Schema):
    history_id: int
    when: datetime
    user: str | None = Field(None, description="Username of who made the change.")
    action: Literal["created", "changed", "deleted"]
    pid: str
    version: str
    mark: int
    reason: str | None = Field(None, description='Why, when recorded: e.g. "revert to version 3".')
    changes: list[Change]


class RevertIn(RequestSchema):
    version: int = Field(
        ...,
        ge=1,
        description="The revision to go back to: the media's `version` then ('1' after create), "
        "as listed by `GET /api/media/{pid}/history`.",
    )


# --- search: metadata conditions, GET /api/media parameters and page, error sentences ------------

METADATA_OPS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "contains", "exists", "wildcard")
_INT64 = 2**63


def _is_scalar(value: Any) -> bool:
    """A string, boolean, null, or a number both databases hold exactly (finite, 64-bit integers)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return -_INT64 <= value < _INT64
    return value is None or isinstance(value, str | bool)


def _check_containable(value: Any, depth: int = 0) -> None:
    """`contains` takes a scalar, a list of scalars, or an object of those (nested objects too)."""
    if depth > 8:
        raise ValueError("'contains' value is nested too deeply")
    if isinstance(value, list):
        if not all(_is_scalar(item) for item in value):
            raise ValueError("'contains' lists may only hold strings, numbers, booleans or null")
    elif isinstance(value, dict):
        for item in value.values():
            _check_containable(item, depth + 1)
    elif not _is_scalar(value):
        raise ValueError("'contains' numbers must be finite and integers within 64 bits")


class MetadataCondition(RequestSchema):
    """One condition on the metadata value at `path`.

    `path` is `"a.b.c"` (object keys) or `["a", "b", 0]` (strings are object keys, integers index
    lists). Values compare only with values of the same JSON type: numbers as numbers, strings by
    code point, and a type mismatch (or a missing path) never matches, for `ne` too.
    Ops: `eq`/`ne` (string, number, boolean; `eq` also null), `lt`/`lte`/`gt`/`gte` (number or
    string), `in` (a list of those: equal to any), `contains` (the value at path is a list holding
    `value`, or every item of a list `value`; or an object containing the object `value`, nested
    objects compared the same way), `exists` (`value` true, the default, or false), `wildcard`
    (a string pattern the string at path must match).
    """

    path: str | list[StrictStr | StrictInt] = Field(
        ..., description='`"a.b.c"` or `["a", "b", 0]`; at most 32 keys.'
    )
    op: Literal["eq", "ne", "lt", "lte", "gt", "gte", "in", "contains", "exists", "wildcard"]
    value: Any = Field(None, description="What to compare with; see the op.")

    @property
    def path_keys(self) -> list[str | int]:
        return self.path.split(".") if isinstance(self.path, str) else list(self.path)

    @model_validator(mode="after")
    def _check(self) -> MetadataCondition:
        keys = self.path_keys
        if not keys or (isinstance(self.path, str) and "" in keys):
            raise ValueError("path must name at least one key and no empty ones (use the list form)")
        if len(keys) > MAX_PATH_KEYS:
            raise ValueError(f"path has {len(keys)} keys; at most {MAX_PATH_KEYS} are allowed")
        for key in keys:
            if isinstance(key, int) and key < 0:
                raise ValueError("list indexes in a path must not be negative")
            if isinstance(key, str) and '"' in key:
                raise ValueError("path keys must not contain '\"'")
        op, value = self.op, self.value
        if op == "exists":
            if value is None:
                self.value = True
            elif not isinstance(value, bool):
                raise ValueError("'exists' takes true or false")
        elif op == "wildcard":
            if not isinstance(value, str):
                raise ValueError("'wildcard' needs a string pattern")
        elif op in ("lt", "lte", "gt", "gte"):
            if isinstance(value, bool) or value is None or not _is_scalar(value):
                raise ValueError(f"'{op}' needs a number or a string")
        elif op == "eq":
            if not _is_scalar(value):
                raise ValueError(
                    "'eq' needs a string, number, boolean or null (use 'contains' for lists and objects)"
                )
        elif op == "ne":
            if value is None or not _is_scalar(value):
                raise ValueError("'ne' needs a string, number or boolean")
        elif op == "in":
            if not isinstance(value, list) or not all(_is_scalar(item) for item in value):
                raise ValueError("'in' needs a list of strings, numbers, booleans or nulls")
            if len(value) > MAX_IN_VALUES:
                raise ValueError(f"'in' takes at most {MAX_IN_VALUES} values")
        elif op == "contains":
            _check_containable(value)
        return self


class MediaListQuery(SearchScope):
    """Query parameters of `GET /api/media`: the filters of `POST /api/media/search`, where lists are
    repeated parameters (`?tags=a&tags=b`)."""

    tags: list[str] = Field(default_factory=list, description="Repeatable: media carrying any of these tags.")
    tags_all: list[str] = Field(default_factory=list, description="Repeatable: media carrying all of these.")
    pid: str | None = Field(None, description="Wildcard the pid must match (`*`, `?`, `\\` escapes).")
    pid_type: list[str] = Field(default_factory=list, description="Repeatable: identifier type of the pid.")
    identifiers: list[str] = Field(
        default_factory=list, description="Repeatable `type=wildcard`, e.g. `bin=D2024*`."
    )
    identifier: str | None = Field(None, description="Wildcard that the pid or any identifier value matches.")
    metadata: list[str] = Field(
        default_factory=list,
        description="Repeatable `path:op[:value]`, e.g. `a.b:gte:5`, `status:eq:done`, `flag:exists`. The "
        'value is read as JSON when it parses (`5`, `true`, `"5"`, `[1,2]`), else as a string; for '
        "`wildcard` it is always the pattern text.",
    )
    cursor: str | None = Field(
        None,
        description="Continue after the row this cursor names (as the `next` links of deep pages carry "
        "it); `offset` then only says how many matches came before.",
    )

    error_subject: ClassVar[str] = "query parameter"


class MediaPage(Schema):
    count: int = Field(..., description="Number of matches (exact below `count_exact` false; see there).")
    count_exact: bool = Field(
        ..., description="False when counting stopped at the server's cap: `count` is then a lower bound."
    )
    next: str | None = Field(..., description="URL of the next page, or null.")
    previous: str | None = Field(..., description="URL of the previous page, or null.")
    items: list[MediaOut]


_TYPE_TAG = re.compile(r"(str|int|float|bool|none|[a-z-]+\[.*\])")


def filter_error_sentence(exc: ValidationError, what: str) -> str:
    """One sentence for a 422 out of pydantic's errors, naming each bad field like `metadata[0].op`.

    Union member tags that pydantic puts into locations (`str`, `list[str]`) are left out, and the
    messages of one field are joined ("Input should be a valid string or a valid list").
    """
    by_field: dict[str, list[str]] = {}
    for error in exc.errors():
        parts = [p for p in error["loc"] if isinstance(p, int) or not _TYPE_TAG.fullmatch(p)]
        name = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")
        if error["type"] == "extra_forbidden":
            by_field.setdefault(name, []).append("is not known")
            continue
        by_field.setdefault(name, []).append(error["msg"].removeprefix("Value error, "))
    sentences = []
    for name, messages in list(by_field.items())[:5]:
        messages = list(dict.fromkeys(messages))
        text = messages[0] + "".join(" or " + m.removeprefix("Input should be ") for m in messages[1:])
        if text == "is not known":
            sentences.append(f"unknown {what} '{name}'")
        else:
            sentences.append(f"{what} '{name}': {text}" if name else f"{what}: {text}")
    return "; ".join(sentences)


MediaSearch.model_rebuild()
