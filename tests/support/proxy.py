"""A loopback TCP proxy that can cut a connection in the middle of a request body.

``CuttingProxy(target_port, cut_after=n)`` forwards every connection to ``127.0.0.1:target_port``;
the first connection whose client sends ``n`` bytes is cut right after them, as a dropped link
would: the client's side is reset, the server's side closed once the ``n`` bytes are delivered
(so the server sees exactly those bytes, then the end of the connection). Later connections pass
untouched.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

from tests.support.ports import free_port

STEP = 64 << 10


class CuttingProxy:
    def __init__(self, target_port: int, *, cut_after: int | None = None) -> None:
        self.target_port = target_port
        self.cut_after = cut_after
        self.cuts = 0
        self.port = free_port()
        self.listener = socket.create_server(("127.0.0.1", self.port))
        self.stopped = False
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self.stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self.lock:
                limit = self.cut_after if self.cuts == 0 else None
            pair = (client, upstream)
            threading.Thread(target=self._pump, args=(client, upstream, limit, pair), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, None, pair), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, limit: int | None, pair) -> None:
        sent = 0
        try:
            while True:
                want = STEP if limit is None else min(STEP, limit - sent)
                data = source.recv(want) if want > 0 else b""
                if not data:
                    break
                sink.sendall(data)
                sent += len(data)
                if limit is not None and sent >= limit:
                    with self.lock:
                        self.cuts += 1
                    self._reset(pair)
                    return
        except OSError:
            pass
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    @staticmethod
    def _reset(pair) -> None:
        client, upstream = pair
        with contextlib.suppress(OSError):
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()
        with contextlib.suppress(OSError):
            upstream.shutdown(socket.SHUT_RDWR)
            upstream.close()

    def close(self) -> None:
        self.stopped = True
        with contextlib.suppress(OSError):
            self.listener.close()
