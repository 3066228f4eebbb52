"""A streamed request body that counts as sent only when all of it arrived.

A WSGI server hands the application a stream that simply ends when the client stops sending: a
client that declared ``Content-Length: 2000000``, sent 500,000 bytes and closed its side looks
like a 500,000-byte body, and storing it replaced good bytes with a prefix. ``FramedBody`` holds
the stream to its framing: a body of declared length must deliver exactly that many bytes, and a
chunked body must end with its last chunk (the server raises while decoding a cut-off chunked
body). Anything else raises ``IncompleteBody`` from ``read``, so the backend writing the stream
discards what it wrote (``Backend.put_stream``) and the media is untouched.
"""

from __future__ import annotations

import logging
from typing import BinaryIO

from django.http import HttpRequest

from mediastore.errors import IncompleteBody, LengthRequired, MediastoreError, NotImplementedCoding

log = logging.getLogger(__name__)


class FramedBody:
    """``read(n)`` over a request body of ``length`` bytes (None: chunked, ended by the server)."""

    def __init__(self, stream: BinaryIO, length: int | None) -> None:
        self.stream = stream
        self.length = length
        self.received = 0

    def read(self, size: int = -1) -> bytes:
        wanted = size
        if self.length is not None:
            left = self.length - self.received
            wanted = left if size < 0 else min(size, left)
            if wanted == 0:
                return b""
        try:
            chunk = self.stream.read(wanted)
        except MediastoreError:
            raise  # an answer of its own (a body deadline, for instance)
        # The WSGI server's errors for a broken body (a chunk cut off, a connection reset, a read
        # timing out) share no base class across servers: whatever the read raised, the body
        # did not arrive.
        except Exception as exc:
            log.info("request body broke off after %d bytes: %r", self.received, exc)
            raise IncompleteBody(
                f"the request body broke off after {self.received} bytes ({type(exc).__name__}); "
                "nothing was stored: send it again"
            ) from None
        self.received += len(chunk)
        if not chunk and self.length is not None and wanted != 0:
            raise IncompleteBody(
                f"the request body ended after {self.received} of the {self.length} bytes its "
                "Content-Length declared; nothing was stored: send it again"
            )
        return chunk


def body_stream(request: HttpRequest) -> tuple[FramedBody, int | None]:
    """The request body to stream, held to its framing (``content.framing``), and its declared
    length (None for a chunked body).

    Only a body framed by ``Content-Length`` or ``Transfer-Encoding: chunked`` is read; anything
    else is 411. ``wsgi.input_terminated`` alone proves nothing: gunicorn sets it on every request,
    so a PUT with neither header would otherwise store an empty object over the old bytes. A
    transfer coding other than chunked (``gzip, chunked``) is 501: the server would hand over the
    compressed bytes, and they would be stored as if they were the content.
    """
    encoding = request.META.get("HTTP_TRANSFER_ENCODING", "")
    codings = [c.strip().lower() for c in encoding.split(",") if c.strip()]
    unsupported = [c for c in codings if c not in ("chunked", "identity")]
    if unsupported:
        raise NotImplementedCoding(
            f"Transfer-Encoding {', '.join(unsupported)} is not supported; send the bytes as they are "
            "(with Content-Length or Transfer-Encoding: chunked). Nothing was stored."
        )
    if request.META.get("CONTENT_LENGTH", "") != "" and not codings:
        try:
            size = int(request.META["CONTENT_LENGTH"])
        except ValueError:
            size = -1
        if size < 0:
            raise LengthRequired("Content-Length must be a whole number of bytes")
        return FramedBody(request, size), size
    if not codings or codings[-1] != "chunked":
        raise LengthRequired(
            "send the body with a Content-Length header or Transfer-Encoding: chunked "
            "(Content-Length: 0 stores an empty object)"
        )
    if not request.META.get("wsgi.input_terminated"):  # the server does not mark where it ends
        raise LengthRequired("this server cannot read chunked bodies; send a Content-Length header")
    return FramedBody(request.META["wsgi.input"], None), None
