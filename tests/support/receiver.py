"""A webhook receiver for tests: a threaded ``http.server`` on loopback that records every POST
(time, headers, body) and answers what ``answer(n)`` says for the n-th one to its path (1-based):
a status, or ``HANG`` (read the request, then answer nothing until the server closes)."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HANG = -1
HANG_SECONDS = 30  # bounded: the server's close releases hanging handlers anyway


@dataclass
class Received:
    time: float
    headers: dict[str, str]
    body: bytes
    answered: int
    path: str


class Receiver:
    def __init__(self, answer: Callable[[int], int] = lambda n: 200) -> None:
        self.answer = answer
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.closing = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    # Numbered per path (each subscription's URL): which of its requests this is.
                    number = 1 + sum(1 for earlier in receiver.received if earlier.path == self.path)
                    status = receiver.answer(number)
                    receiver.received.append(
                        Received(time.monotonic(), dict(self.headers), body, status, self.path)
                    )
                if status == HANG:
                    receiver.closing.wait(HANG_SECONDS)
                    return
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def signature_valid(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Checks ``X-Mediastore-Signature`` as docs/webhooks.md tells receivers to."""
    parts = dict(item.split("=", 1) for item in headers["X-Mediastore-Signature"].split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])
