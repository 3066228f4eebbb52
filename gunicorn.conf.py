"""Gunicorn settings for mediastore: ``gunicorn -c gunicorn.conf.py mediastore.wsgi`` (see bin/start).

Read from the environment, or from the same ``.env`` file the Django settings read (documented in
``dotenv``): WEB_CONCURRENCY workers (default 2), GUNICORN_BIND (default 0.0.0.0:8000),
GUNICORN_TIMEOUT seconds (default 300, room for large uploads and downloads),
GUNICORN_WORKER_CLASS (default gthread) with GUNICORN_THREADS threads per worker (default 8).

Thread budget (docs/production.md, "Slow clients"): WEB_CONCURRENCY x GUNICORN_THREADS requests are served at
once (16 by default); a request holds its thread while its body arrives. Behind nginx every body
but the raw content stream arrives whole first. Sent straight here, a body read before the request
is authenticated (login) holds a thread at most MEDIASTORE_ANON_BODY_TIMEOUT_S (default 10 s), any
body at most MEDIASTORE_BODY_TIMEOUT_S (30 s) without a byte, then 408 and the connection closed
(mediastore/bodies.py); a bad token is 401 before its body is read. So K slow clients without a
token hold at most min(K, threads) threads for 10 s each, and whatever waits behind them is served
within 10 s per full set of threads they fill. Slow request *headers* are not bounded by gunicorn
(a gthread worker waits 5 s for a connection's first byte without a thread, then reads the headers
in one): keep nginx (client_header_timeout) in front of untrusted clients.

Prometheus metrics (mediastore/metrics.py) from all workers: each worker writes its counters to
files in PROMETHEUS_MULTIPROC_DIR and a scrape of any worker adds them up. The variable must be
set before a worker imports prometheus_client, so the master sets it before forking the first
worker: the operator's directory is emptied at start (on_starting); when unset, pre_fork makes a
fresh directory of this server (on /dev/shm when there is one), which on_exit removes.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
if str(BASE_DIR) not in sys.path:
    sys.path.insert(0, str(BASE_DIR))

from mediastore import env  # noqa: E402  (needs BASE_DIR on sys.path)

_env_file = env.env_file(BASE_DIR / ".env")
if _env_file is not None:
    env.load_dotenv(_env_file)

bind = [env.get_str("GUNICORN_BIND") or "0.0.0.0:8000"]
workers = env.get_int("WEB_CONCURRENCY", 2, minimum=1)
# A sync worker that has not finished a request within this many seconds is killed and restarted:
# it must cover the slowest upload or download a client may make.
timeout = env.get_int("GUNICORN_TIMEOUT", 300, minimum=1)
graceful_timeout = 30
keepalive = 5

# Worker model (docs/performance.md): threaded workers keep connections alive between requests
# and go on answering small reads while some threads stream long transfers; sync workers close
# every connection and are held whole by each slow client. GUNICORN_WORKER_CLASS=sync restores them.
worker_class = env.get_str("GUNICORN_WORKER_CLASS") or "gthread"
# gunicorn turns a sync worker with more than one thread into gthread: threads only for gthread.
threads = env.get_int("GUNICORN_THREADS", 8, minimum=1) if worker_class == "gthread" else 1

# gunicorn >= 25 opens a control socket under $HOME by default; nothing here uses it, the image's
# user cannot write its home, and several servers on one host would fight over the one path.
control_socket_disable = True

accesslog = "-"
errorlog = "-"
# h is the client's address, also behind nginx (mediastore/logs.py: the right-most X-Forwarded-For
# entry not in MEDIASTORE_TRUSTED_PROXIES); MEDIASTORE_LOG_FORMAT=json makes every line JSON.
logger_class = "mediastore.logs.GunicornLogger"
# The worker's pid (p) shows which process served a request; L is the request time in seconds.
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(L)ss pid=%(p)s'

_metrics_dir_ours: str | None = None  # the directory pre_fork made, removed by on_exit

# Heartbeat files on a RAM disk: a disk-backed /tmp (as in containers) can stall workers.
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"


def on_starting(server) -> None:
    """Empty the metrics directory (values of an earlier run must not be added to this one's), and
    say once, at start-up, where DictStore (RAM store) objects live. Every worker finds them
    either way; only replicas on other hosts (or in other containers) need Redis."""
    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
    if metrics_dir:
        os.makedirs(metrics_dir, exist_ok=True)
        for name in os.listdir(metrics_dir):
            if name.endswith(".db"):
                os.unlink(os.path.join(metrics_dir, name))
    if env.get_str("MEDIASTORE_REDIS_URL"):
        where = "in Redis (MEDIASTORE_REDIS_URL), shared by every worker and replica"
    else:
        where = (
            f"in this host's RAM directory (MEDIASTORE_RAM_DIR), shared by its {server.cfg.workers} "
            "worker(s); replicas on other hosts need MEDIASTORE_REDIS_URL"
        )
    server.log.info("DictStore (RAM store) objects are kept %s", where)


def pre_fork(server, worker) -> None:
    """Before the first worker is forked: without an operator's PROMETHEUS_MULTIPROC_DIR, give this
    server a fresh one (workers inherit the variable)."""
    global _metrics_dir_ours
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip():
        _metrics_dir_ours = tempfile.mkdtemp(
            prefix="mediastore-metrics-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None
        )
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir_ours


def child_exit(server, worker) -> None:
    """A worker ended (restart, timeout, shutdown): its live gauges stop counting; its counters stay."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    if _metrics_dir_ours:
        shutil.rmtree(_metrics_dir_ours, ignore_errors=True)
