"""Helpers for the live tests of the AMQP relay, against the RabbitMQ on 127.0.0.1:5672.

Each test publishes to an exchange of its own and reads queues of its own (``Route``, deleted
afterwards), so tests never see each other's messages and nothing else on the shared broker is
touched. ``relay`` starts ``manage.py relay_events`` as a real subprocess beside a ``stack.Server``;
``CuttingProxy`` sits between a relay and the broker and cuts the connection on cue (the shared
broker is never stopped).
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import sys
import threading
import time
import uuid

import pytest

from tests.support.ports import free_port
from tests.support.processes import Process
from tests.support.servers import Server, skip_or_fail

BROKER = ("127.0.0.1", 5672)
DEADLINE_SECONDS = 180


def broker_url(port: int = BROKER[1]) -> str:
    return f"amqp://guest:guest@127.0.0.1:{port}/%2F?connection_attempts=1&socket_timeout=5"


def amqp_connection():
    import pika

    return pika.BlockingConnection(pika.URLParameters(broker_url()))


def require_broker() -> None:
    """Skip (fail under CI or MEDIASTORE_REQUIRE_E2E) when the broker does not answer."""
    import pika.exceptions

    try:
        amqp_connection().close()
    except pika.exceptions.AMQPError as exc:
        skip_or_fail(f"RabbitMQ at {BROKER[0]}:{BROKER[1]} unreachable: {exc!r}", ci_too=True)


class Route:
    """A fresh topic exchange (durable unless told, as the relay declares it) and a queue bound to
    all media events; both deleted by ``close``."""

    def __init__(self, *, durable: bool = True) -> None:
        tag = uuid.uuid4().hex[:10]
        self.exchange, self.queue = f"test-relay-{tag}", f"test-relay-{tag}"
        self.durable = durable
        with self.channel() as channel:
            channel.exchange_declare(self.exchange, exchange_type="topic", durable=durable)
            channel.queue_declare(self.queue)
            channel.queue_bind(self.queue, self.exchange, routing_key="media.#")

    @contextlib.contextmanager
    def channel(self):
        connection = amqp_connection()
        try:
            yield connection.channel()
        finally:
            connection.close()

    def count(self) -> int:
        with self.channel() as channel:
            return channel.queue_declare(self.queue, passive=True).method.message_count

    def drain(self) -> list[tuple[str, dict, object]]:
        """Every message in the queue as (routing key, body, properties), in queue order."""
        got = []
        with self.channel() as channel:
            for _ in range(100_000):
                method, properties, body = channel.basic_get(self.queue, auto_ack=True)
                if method is None:
                    break
                got.append((method.routing_key, json.loads(body), properties))
        return got

    def close(self) -> None:
        with self.channel() as channel:
            channel.queue_delete(self.queue)
            channel.exchange_delete(self.exchange)


def relay(server: Server, route: Route, name: str, *args: str, port: int = BROKER[1], **env: str) -> Process:
    """``manage.py relay_events`` publishing the server's events to ``route``'s exchange (through
    ``port``, e.g. a ``CuttingProxy``'s), its output in ``<name>.log``; stops by itself after
    DEADLINE_SECONDS at the latest."""
    environment = {
        **server.env,
        "PYTHONUNBUFFERED": "1",
        "MEDIASTORE_AMQP_URL": broker_url(port),
        "MEDIASTORE_AMQP_EXCHANGE": route.exchange,
        "MEDIASTORE_AMQP_EXCHANGE_DURABLE": "true" if route.durable else "false",
        **env,
    }
    args = [sys.executable, "manage.py", "relay_events", "--max-seconds", str(DEADLINE_SECONDS), *args]
    return Process(name, args, environment, server.workdir / f"{name}.log")


def finish(process: Process) -> str:
    """Wait for a relay that exits by itself; its log, after asserting it exited cleanly."""
    try:
        code = process.proc.wait(timeout=DEADLINE_SECONDS + 30)
    finally:
        process.stop(signal.SIGKILL)
    assert code == 0, process.log()[-5000:]
    return process.log()


def unpublished(server: Server) -> int:
    code = "from media.models import MediaEvent; print(MediaEvent.objects.filter(published=None).count())"
    return int(server.manage("shell", "-c", code).split()[-1])


def wait_for(condition, what: str, process: Process, timeout: float = 60) -> None:
    """Poll ``condition()``; fail with the process's log when it exits or time runs out first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process.proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{what}: not reached; {process.name} log:\n{process.log()[-5000:]}")
        time.sleep(0.05)


class CuttingProxy:
    """Forwards 127.0.0.1:<port> to the broker; after ``cut_after`` bytes towards the broker it
    closes every connection and stops listening until ``reopen``."""

    def __init__(self, cut_after: int) -> None:
        self.port = free_port()
        self.cut_after: int | None = cut_after
        self.forwarded = 0
        self.cut = threading.Event()
        self.lock = threading.Lock()
        self.sockets: list[socket.socket] = []
        self.listener: socket.socket | None = None
        self.reopen()

    def reopen(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        for _ in range(1000):
            try:
                client, _ = listener.accept()
                upstream = socket.create_connection(BROKER, timeout=5)
            except OSError:
                return
            upstream.settimeout(None)
            with self.lock:
                self.sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, to_broker: bool) -> None:
        while True:
            try:
                data = source.recv(65536)
                if not data:
                    break
                target.sendall(data)
            except OSError:
                break
            if to_broker:
                with self.lock:
                    self.forwarded += len(data)
                    trip = self.cut_after is not None and self.forwarded >= self.cut_after
                    if trip:
                        self.cut_after = None
                if trip:
                    self.close()
                    self.cut.set()
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with self.lock:
            doomed, self.sockets = [self.listener, *self.sockets], []
        for sock in doomed:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
