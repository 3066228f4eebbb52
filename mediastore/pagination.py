"""Pages of a list over HTTP: the ``Page`` a selector returns, and how it goes on the wire.

A paged answer says how many match in ``X-Total-Count`` (``X-Total-Count-Exact: false`` when that
is a lower bound) and, when more follow, links the next page with ``Link: <url>; rel="next"``. The
URL is the request's own with other paging parameters, so a client that POSTs a body sends the same
body there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from ninja.responses import NinjaJSONEncoder


@dataclass
class Page:
    """One page of matches.

    ``total`` is exact when ``total_exact``; otherwise counting stopped at a cap and ``total`` is a
    lower bound. ``next_params`` are the query parameters (besides ``offset`` and ``limit``) that
    the link to the next page carries, e.g. a keyset cursor.
    """

    items: list[Any]
    total: int
    total_exact: bool
    offset: int
    limit: int
    has_next: bool
    next_params: dict[str, str] = field(default_factory=dict)


def page_url(request: HttpRequest, offset: int, limit: int, **params: str) -> str:
    """This request's URL with another ``offset`` (and the same ``limit``); ``params`` are set too,
    and a ``cursor`` of this request is dropped unless given again."""
    query = request.GET.copy()
    query.pop("cursor", None)
    query["offset"] = str(offset)
    query["limit"] = str(limit)
    for name, value in params.items():
        query[name] = value
    return request.build_absolute_uri(f"{request.path}?{query.urlencode()}")


def next_url(request: HttpRequest, page: Page) -> str | None:
    """The URL of the page after ``page``, or None when it is the last."""
    if not page.has_next:
        return None
    return page_url(request, page.offset + page.limit, page.limit, **page.next_params)


def previous_url(request: HttpRequest, page: Page) -> str | None:
    """The URL of the page before ``page`` (by offset), or None on the first."""
    if page.offset <= 0:
        return None
    return page_url(request, max(page.offset - page.limit, 0), page.limit)


_ENCODER = NinjaJSONEncoder()
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME  # dates as ninja writes them (milliseconds, "Z")


def _default(value: Any) -> Any:
    """What ninja's encoder gives for ``value``; datetimes (most of a page's values that orjson does
    not write itself) without its chain of isinstance checks: ISO 8601 to the millisecond (cut, not
    rounded), no fraction when there is none, UTC as "Z" (a test compares both encoders)."""
    if type(value) is datetime:
        text = value.isoformat(timespec="milliseconds") if value.microsecond else value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    return _ENCODER.default(value)


def dumps(body: Any) -> bytes:
    """``body`` as JSON meaning what ninja's encoder writes, fast (orjson).

    Dates, decimals and the like go through ninja's encoder, so they read the same; an
    ``orjson.Fragment`` (JSON text from the database) goes in as it is. Integers beyond 64 bits are
    more than orjson takes: a body holding one outside a fragment is written by the standard
    library instead.
    """
    try:
        return orjson.dumps(body, default=_default, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        return json.dumps(body, cls=NinjaJSONEncoder).encode()


def json_response(body: Any) -> HttpResponse:
    """A JSON answer as ninja renders its own (same values, same content type)."""
    return HttpResponse(dumps(body), content_type="application/json; charset=utf-8")


def set_page_headers(response: HttpResponse, request: HttpRequest, page: Page) -> None:
    """``X-Total-Count`` (and ``X-Total-Count-Exact``), and ``Link: <url>; rel="next"`` when more."""
    response["X-Total-Count"] = str(page.total)
    response["X-Total-Count-Exact"] = "true" if page.total_exact else "false"
    url = next_url(request, page)
    if url is not None:
        response["Link"] = f'<{url}>; rel="next"'


class JsonArrayStream(StreamingHttpResponse):
    """A JSON array sent in pieces. Servers iterate it; reading ``content`` or ``text`` (as Django's
    test client does for ``.json()``) drains the stream once and keeps the bytes."""

    def __init__(self, chunks: Iterator[str]) -> None:
        super().__init__(chunks, content_type="application/json")

    @property
    def content(self) -> bytes:
        if not hasattr(self, "_drained"):
            self._drained = b"".join(self.streaming_content)
        return self._drained

    @property
    def text(self) -> str:
        return self.content.decode(self.charset)
