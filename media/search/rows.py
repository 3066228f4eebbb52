"""The media of a page as plain dicts in the ``MediaOut`` shape, read with ``values()``.

A page of 1000 media built as model instances (with their store joined) and then turned into
dicts cost more than its SQL; ``values()`` rows plus one query for the page's few stores give the
same dicts (``media.schemas.media_out_dict``'s keys and values, which a test compares with the
schema path) for a fraction of that. The JSON columns are not even parsed: the database's text of
them goes into the answer as it is (``orjson.Fragment``), which also keeps integers of any size.
"""

from __future__ import annotations

from typing import Any

import orjson
from django.db.models import QuerySet, TextField
from django.db.models.functions import Cast

from media.models import Media
from stores.models import StoreConfig

FIELDS = (
    "pk",
    "pid",
    "pid_type_id",
    "store_config_id",
    "store_status",
    "mark",
    "version",
    "size",
    "checksum",
    "content_type",
    "created",
    "updated",
)


def _stores(ids: set[int]) -> dict[int, dict[str, Any]]:
    stores = StoreConfig.objects.select_related("s3cfg").filter(pk__in=ids) if ids else []
    return {
        store.pk: {"pk": store.pk, "type": store.type, "bucket": store.bucket, "s3_url": store.s3_url}
        for store in stores
    }


def media_rows(qs: QuerySet[Media]) -> list[dict[str, Any]]:
    """The media of ``qs`` in its order, as ``media_out_dict`` would give them (two queries)."""
    raw = {name: Cast(name, TextField()) for name in ("identifiers", "metadata", "tag_list")}
    rows = list(qs.values(*FIELDS, **{f"{name}_json": cast for name, cast in raw.items()}))
    stores = _stores({row["store_config_id"] for row in rows})
    return [
        {
            "pk": row["pk"],
            "pid": row["pid"],
            "pid_type": row["pid_type_id"],
            "store_config": stores[row["store_config_id"]],
            "store_status": row["store_status"],
            "identifiers": orjson.Fragment(row["identifiers_json"]),
            "metadata": orjson.Fragment(row["metadata_json"]),
            "tags": orjson.Fragment(row["tag_list_json"]),
            "mark": row["mark"],
            "version": str(row["version"]),
            "size": row["size"],
            "checksum": row["checksum"],
            "content_type": row["content_type"],
            "created": row["created"],
            "updated": row["updated"],
        }
        for row in rows
    ]
