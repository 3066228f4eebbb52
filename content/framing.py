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

from mediastore.errors import IncompleteBody, MediastoreError

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
