"""One webhook POST, to an address checked beforehand, within hard time and size bounds.

The connection goes to the address ``events.webhook_targets.checked_address`` accepted, never to a
second lookup of the name; the request still names the host (``Host``), and for https the TLS
handshake sends it (SNI) and checks the certificate against it. Redirects are not followed (a 3xx is
a failed attempt). ``connect_timeout`` bounds the connection; ``total_timeout`` the whole attempt:
a watchdog shuts the socket down when it passes, so a receiver trickling its answer a byte at a
time cannot hold a worker longer. At most ``MAX_READ`` bytes of the answer are read.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
from dataclasses import dataclass

from events.webhook_targets import Address, Target

MAX_READ = 64 * 1024
ERROR_BODY_CHARS = 200


@dataclass
class Answer:
    status: int | None  # None: no HTTP answer
    error: str  # "" when acknowledged
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class PinnedConnection(http.client.HTTPConnection):
    """Plain HTTP to ``address``, naming ``host``."""

    def __init__(self, host: str, port: int, address: Address, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((str(self.address), self.port), self.timeout)


class PinnedTLSConnection(PinnedConnection):
    """HTTPS to ``address`` with SNI and certificate checks for ``host``."""

    tls = ssl.create_default_context()

    def connect(self) -> None:
        super().connect()
        self.sock = self.tls.wrap_socket(self.sock, server_hostname=self.host)


def post(
    target: Target,
    address: Address,
    body: bytes,
    headers: dict[str, str],
    *,
    connect_timeout: float,
    total_timeout: float,
) -> Answer:
    """POST ``body`` to ``target`` at ``address``. Never raises for what the network or the receiver
    does: every outcome is an Answer."""
    kind = PinnedTLSConnection if target.scheme == "https" else PinnedConnection
    conn = kind(target.host, target.port, address, timeout=min(connect_timeout, total_timeout))
    started = time.monotonic()
    expired = threading.Event()

    def cut() -> None:
        expired.set()
        if conn.sock is not None:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)

    watchdog = threading.Timer(total_timeout, cut)
    watchdog.daemon = True
    watchdog.start()
    status: int | None = None
    connected = False
    try:
        conn.connect()
        connected = True
        if expired.is_set():  # the watchdog fired before there was a socket to shut down
            raise TimeoutError
        conn.sock.settimeout(total_timeout)
        conn.request("POST", target.path, body=body, headers={**headers, "Connection": "close"})
        response = conn.getresponse()
        status = response.status
        text = response.read(MAX_READ)
        error = "" if 200 <= status < 300 else f"HTTP {status}: {excerpt(text)}"
        if 300 <= status < 400:
            error = f"HTTP {status} (redirects are not followed): {response.getheader('Location', '')}"
    except (OSError, http.client.HTTPException, ValueError) as exc:
        error = describe(exc, expired.is_set(), total_timeout)
        if not connected and not expired.is_set() and isinstance(exc, TimeoutError):
            error = f"could not connect within {min(connect_timeout, total_timeout):g} s"
        if status is not None and not expired.is_set():  # the status line came: it counts
            error = "" if 200 <= status < 300 else f"HTTP {status}"
    finally:
        watchdog.cancel()
        conn.close()
    if expired.is_set():
        status, error = None, f"no complete answer within {total_timeout:g} s"
    return Answer(status, error, int((time.monotonic() - started) * 1000))


def excerpt(text: bytes) -> str:
    return text[:ERROR_BODY_CHARS].decode("utf-8", "replace").strip()


def describe(exc: BaseException, expired: bool, total_timeout: float) -> str:
    if expired or isinstance(exc, TimeoutError | socket.timeout):
        return f"no complete answer within {total_timeout:g} s"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate refused: {exc.verify_message}"
    return f"{type(exc).__name__}: {exc}"
