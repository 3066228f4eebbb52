"""Helpers shared by the request schemas."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, ValidationInfo, field_validator, model_validator

from mediastore.compat import SchemaValidatedOnce

# Fields that known clients send although no request schema has them: accepted and dropped before
# validation, so that these clients keep working while any other unknown field is a 422 naming it.
# Keyed by the request schema's class name: {field: the client that sends it}. The schema's
# Swagger description and docs/api.md ("JSON bodies and limits") list them too (tests/test_unknown_fields.py).
CLIENT_SENT_FIELDS: dict[str, dict[str, str]] = {
    "StoreConfigIn": {
        # amplify-storage-utils' MediaStore (storage/mediastore.py) sends an entry of GET /api/stores
        # back unchanged as `mediadata.store_config` of POST /api/upload, with that entry's pk.
        "pk": "amplify-storage-utils' MediaStore",
    },
}


class RequestSchema(SchemaValidatedOnce):
    """A JSON request body (or an object inside one) that refuses fields it does not declare.

    A misspelt or misplaced field (`metadata` for `data`, `tags` in `PATCH /api/media/{pid}`) would
    otherwise be dropped without a word, and the update answer success having changed nothing. The
    fields of ``CLIENT_SENT_FIELDS`` are the exception: dropped, never refused. A JSON object is
    validated once (``mediastore.compat.SchemaValidatedOnce``; ninja's ``Schema`` validates such a
    schema twice)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _drop_client_sent_fields(cls, data: Any) -> Any:
        ignored = CLIENT_SENT_FIELDS.get(cls.__name__)
        if ignored and isinstance(data, dict) and not ignored.keys().isdisjoint(data):
            return {key: value for key, value in data.items() if key not in ignored}
        return data


def null_means_default(*fields: str):
    """A validator that reads an explicit JSON ``null`` in ``fields`` as "absent" (the default).

    The published client's schemas declare these fields Optional, so it may send ``null`` where
    the contract has a default (``s3_url``, ``identifiers``, ``base64``, ...).
    """

    def use_default(cls, value, info: ValidationInfo):
        if value is None:
            return cls.model_fields[info.field_name].get_default(call_default_factory=True)
        return value

    return field_validator(*fields, mode="before")(classmethod(use_default))
