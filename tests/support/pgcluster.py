"""A throw-away PostgreSQL primary with a streaming replica, for the read-replica tests and
docs/scaling.md's recipe: ``initdb`` into a temporary directory, ``pg_basebackup -R`` from it, two
``postgres`` processes on free loopback ports. Never touches the machine's own server.

PostgreSQL refuses to run as root; when the tests run as root the commands run as the ``postgres``
user (``runuser -u postgres --``), which must exist (it does wherever the server package is
installed). Trust authentication on loopback only.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.ports import free_port
from tests.support.processes import HarnessError


def pg_bin() -> Path | None:
    """The newest installed PostgreSQL's bin directory (Debian's layout), or the one of PATH."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name)
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class Cluster:
    """``start()`` a primary on one port and its streaming replica on another; ``stop_replica()``,
    ``start_replica()``; ``close()`` stops both and removes everything."""

    def __init__(self) -> None:
        self.bin = pg_bin()
        if self.bin is None:
            raise HarnessError("PostgreSQL's server programs (initdb, pg_basebackup) are not installed")
        self.root = Path(tempfile.mkdtemp(prefix="mediastore-pgcluster-"))
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.primary_dir, self.replica_dir = self.root / "primary", self.root / "replica"
        self.primary_port, self.replica_port = free_port(), free_port()

    def run(self, *args: str) -> None:
        done = subprocess.run(
            [*self.as_user, str(self.bin / args[0]), *args[1:]], capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            raise HarnessError(f"{' '.join(args[:2])} failed: {done.stderr.strip()[-2000:]}")

    def pg_ctl(self, data: Path, action: str, port: int | None = None) -> None:
        args = ["pg_ctl", "-D", str(data), "-w", "-t", "60", "-l", str(data.parent / f"{data.name}.log")]
        if port is not None:
            args += ["-o", f"-p {port} -k {self.root} -c listen_addresses=127.0.0.1"]
        if action == "stop":
            args += ["-m", "fast"]
        self.run(*args, action)

    def start(self) -> None:
        self.run("initdb", "-D", str(self.primary_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        with open(self.primary_dir / "postgresql.conf", "a") as conf:
            # wal_level replica, max_wal_senders and hot_standby are the defaults; a short status
            # interval lets the replica report its replay position promptly.
            # pg_stat_statements: the tests see which statements each server ran.
            conf.write(
                "fsync = off\nwal_receiver_status_interval = 1s\n"
                "shared_preload_libraries = 'pg_stat_statements'\n"
            )
        self.pg_ctl(self.primary_dir, "start", self.primary_port)
        self.run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary_port), "-U", "postgres",
            "-D", str(self.replica_dir), "-R", "-X", "stream", "-c", "fast",
        )  # fmt: skip
        self.start_replica()

    def start_replica(self) -> None:
        self.pg_ctl(self.replica_dir, "start", self.replica_port)

    def stop_replica(self) -> None:
        self.pg_ctl(self.replica_dir, "stop")

    def wait_streaming(self, timeout: float = 30) -> None:
        """Until the primary lists the replica as streaming (bounded)."""
        import psycopg

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with psycopg.connect(**self.params(self.primary_port), autocommit=True) as conn:
                if conn.execute("SELECT 1 FROM pg_stat_replication WHERE state = 'streaming'").fetchone():
                    return
            time.sleep(0.2)
        raise HarnessError("the replica did not start streaming")

    def params(self, port: int, dbname: str = "postgres") -> dict:
        return {"host": "127.0.0.1", "port": port, "user": "postgres", "dbname": dbname, "connect_timeout": 5}

    def env(self, database: str) -> dict[str, str]:
        """The POSTGRES_* variables of a server on this primary and replica."""
        return {
            "POSTGRES_DB": database,
            "POSTGRES_HOST": "127.0.0.1",
            "POSTGRES_PORT": str(self.primary_port),
            "POSTGRES_USER": "postgres",
            "POSTGRES_PASSWORD": "",
            "POSTGRES_REPLICA_HOST": "127.0.0.1",
            "POSTGRES_REPLICA_PORT": str(self.replica_port),
        }

    def close(self) -> None:
        for data in (self.replica_dir, self.primary_dir):
            if (data / "postmaster.pid").exists():
                try:
                    self.pg_ctl(data, "stop")
                except HarnessError:
                    pass
        shutil.rmtree(self.root, ignore_errors=True)
