"""Request bodies read with deadlines, so that slow clients cannot hold the server's threads.

Every read of a request body waits at most ``MEDIASTORE_BODY_TIMEOUT_S`` seconds for its next byte
(progress: a slow upload of real bytes goes on as long as bytes come), and a body read before the
request is authenticated (login, admin forms; a bogus token is refused before its body is read)
must arrive whole within ``MEDIASTORE_ANON_BODY_TIMEOUT_S`` of the request's start. A body that
misses its deadline raises ``mediastore.errors.RequestTimeout``, answered 408 ``{"detail": "..."}``
naming the setting (by ``mediastore.api``, and by ``BodyTimeoutMiddleware`` outside the API);
nothing it carried is kept, and the connection is closed after the answer.

Before, 40 unauthenticated logins sending a byte every 2 seconds held all 32 threads of 4 workers
and ``/api/health`` timed out. The thread budget that follows from these deadlines is in
gunicorn.conf.py and docs/production.md ("Slow clients").

This is the one module that knows gunicorn's side of the WSGI interface (the documented
``gunicorn.socket`` environ key, and, through ``mediastore.compat.close_after_answer``, the
``force_close`` of the object whose ``start_response`` the server passes);
tests/deploy/test_slow_bodies.py and tests/test_compat.py fail when either stops working. Served by
anything else (Django's test client, runserver), bodies are read without deadlines.
"""

from __future__ import annotations

import contextlib
import fcntl
import socket
import struct
import sys
import termios
import time

from django.conf import settings
from django.http import HttpRequest

from mediastore import compat
from mediastore.errors import RequestTimeout

ENVIRON_KEY = "mediastore.body"
# Largest piece read at once when the caller asks for "all of it".
READ_ALL_STEP = 1 << 20


class DeadlineInput:
    """``wsgi.input`` whose every read waits for the socket at most until the body's deadline.

    Each read sets the socket's timeout to what is left: the progress deadline, or less when the
    total deadline (unauthenticated requests) ends sooner. gunicorn's body reader loops over
    ``recv`` until it has as many bytes as asked for, so under a total deadline a read never asks
    for more than has already arrived (the socket's ``FIONREAD`` count, at least one byte): each
    read then waits for one ``recv`` at most, and the total cannot be overrun by a client that
    sends one byte just before each timeout."""

    def __init__(
        self, stream, sock: socket.socket, *, length: int | None, progress_s: int, total_s: int
    ) -> None:
        self.stream = stream
        self.sock = sock
        self.length = length  # None: chunked, the end is known when a read comes back short
        self.progress_s = progress_s
        self.total_s = total_s
        self.total_deadline: float | None = time.monotonic() + total_s
        self.consumed = 0
        self.ended = length == 0
        self.timeout: RequestTimeout | None = None

    def trust(self) -> None:
        """The request is authenticated: from now on only the progress deadline applies."""
        self.total_deadline = None

    @property
    def finished(self) -> bool:
        """Whether the body was read to its end (and not cut off by a deadline)."""
        return self.ended and self.timeout is None

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(READ_ALL_STEP), b""))
        if self.total_deadline is None:
            return self._guarded(self.stream.read, size)
        return self._by_arrival(size, line=False)

    def readline(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = sys.maxsize
        if self.total_deadline is None:
            return self._guarded(self.stream.readline, size)
        return self._by_arrival(size, line=True)

    def _by_arrival(self, size: int, *, line: bool) -> bytes:
        """Up to ``size`` bytes (up to and including a newline if ``line``), read in pieces no larger
        than what has arrived. The pieces are read with ``readline``: gunicorn's ``read`` asks its
        reader for at least 1 KiB whatever the size, its ``readline(n)`` for n bytes at most."""
        parts = []
        while size > 0:
            piece = self._guarded(self.stream.readline, min(size, max(1, self._arrived())))
            if not piece:
                break
            parts.append(piece)
            size -= len(piece)
            if line and piece.endswith(b"\n"):
                break
        return b"".join(parts)

    def readlines(self, hint: int = -1) -> list[bytes]:
        return self.read().splitlines(keepends=True)

    def __iter__(self):
        return iter(self.readline, b"")

    def _arrived(self) -> int:
        """Bytes waiting in the socket's receive queue (none for a socket that cannot say)."""
        try:
            raw = fcntl.ioctl(self.sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
        except OSError:
            return 0
        return struct.unpack("i", raw)[0]

    def _guarded(self, read, size: int) -> bytes:
        if self.timeout is not None:
            raise self.timeout
        timeout, total = self.progress_s, False
        if self.total_deadline is not None:
            left = self.total_deadline - time.monotonic()
            if left <= 0:
                raise self._expired(total=True)
            if left < timeout:
                timeout, total = left, True
        prior = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            data = read(size)
        except TimeoutError:  # socket.timeout
            raise self._expired(total=total) from None
        finally:
            with contextlib.suppress(OSError):  # the socket may be closed under us
                self.sock.settimeout(prior)
        self.consumed += len(data)
        if (size and not data) or (self.length is not None and self.consumed >= self.length):
            self.ended = True
        return data

    def _expired(self, *, total: bool) -> RequestTimeout:
        if total:
            self.timeout = RequestTimeout(
                f"the request body did not arrive within {self.total_s} seconds: a body sent without "
                "a valid token must arrive whole within MEDIASTORE_ANON_BODY_TIMEOUT_S"
            )
        else:
            self.timeout = RequestTimeout(
                f"the request body stopped arriving: no byte for {self.progress_s} seconds "
                "(MEDIASTORE_BODY_TIMEOUT_S)"
            )
        return self.timeout


def trust(request: HttpRequest) -> None:
    """Lift the total deadline of an authenticated request's body (``mediastore.auth``)."""
    body = request.META.get(ENVIRON_KEY)
    if body is not None:
        body.trust()


def declared_length(environ: dict) -> int | None:
    """The body's length from its headers: None for a chunked body, 0 for none."""
    if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return None
    try:
        return max(0, int(environ.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


# After an answer that left its body unread: how long the rest of the body is read and dropped.
# A proxy that buffered the body (nginx) sends it at once; without the drain the close would reset
# the connection with the body unread, and nginx answered 502 instead of the 413 it had been sent.
DRAIN_SECONDS = 1.0
DRAIN_STEP = 1 << 16


class _AnswerThenClose:
    """The application's answer; once the server has sent it (``close``), the rest of the request
    body is read and dropped for at most DRAIN_SECONDS, then the connection's read side is shut."""

    def __init__(self, result, body: DeadlineInput, sock: socket.socket) -> None:
        self.result = result
        self.body = body
        self.sock = sock

    def __iter__(self):
        return iter(self.result)

    def close(self) -> None:
        try:
            close = getattr(self.result, "close", None)
            if callable(close):
                close()
        finally:
            drain(self.sock, self.body)


def drain(sock: socket.socket, body: DeadlineInput) -> None:
    """Read and drop what the client still sends of its body, for at most DRAIN_SECONDS (all of it
    when its length is known and it arrives in time), then shut the read side: gunicorn neither
    drains on (in the worker thread, up to 5 s, and again on closing) nor resets a connection
    whose peer is still reading the answer."""
    left = None if body.length is None else max(body.length - body.consumed, 0)
    deadline = time.monotonic() + DRAIN_SECONDS
    with contextlib.suppress(OSError):
        while left is None or left > 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            sock.settimeout(remaining)
            data = sock.recv(DRAIN_STEP if left is None else min(DRAIN_STEP, left))
            if not data:
                break
            if left is not None:
                left -= len(data)
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RD)


def close_after_answer(start_response) -> None:
    """Answer with ``Connection: close``: an answer given before its body was read (401, 413,
    408, ...) ends its connection, whose rest ``drain`` drops once the answer is out."""
    compat.close_after_answer(start_response)


def with_body_deadlines(application):
    """The WSGI ``application`` with every body under gunicorn read through ``DeadlineInput``, and
    the connection closed after any answer that left its body unread or cut off."""

    def guarded(environ, start_response):
        sock = environ.get("gunicorn.socket")
        if sock is None:
            return application(environ, start_response)
        body = DeadlineInput(
            environ["wsgi.input"],
            sock,
            length=declared_length(environ),
            progress_s=settings.MEDIASTORE_BODY_TIMEOUT_S,
            total_s=settings.MEDIASTORE_ANON_BODY_TIMEOUT_S,
        )
        environ["wsgi.input"] = environ[ENVIRON_KEY] = body
        result = application(environ, start_response)
        if body.finished:
            return result
        close_after_answer(start_response)
        return _AnswerThenClose(result, body, sock)

    return guarded
