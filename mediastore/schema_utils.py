"""Helpers shared by the request schemas."""

from __future__ import annotations

from pydantic import ValidationInfo, field_validator


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
