"""Log lines of the server: the client's address in them, and JSON lines on request.

``MEDIASTORE_LOG_FORMAT`` is ``text`` (default) or ``json`` (one JSON object per line, for log
collectors). It applies to Django's loggers (``settings.LOGGING`` uses the formatters below) and to
gunicorn's error and access logs (gunicorn.conf.py sets ``logger_class`` to ``GunicornLogger``).

The client address is the one mediastore/forwarded.py finds: the connection's peer, or behind a
trusted proxy (``MEDIASTORE_TRUSTED_PROXIES``) the address that proxy saw. gunicorn's access log
shows it as its ``h`` atom (the "remote host" of the combined log format), and Django's lines
about a request (``django.request``'s "Unauthorized: /api/...", ``django.security.*``) carry it as
``client``. gunicorn's ``forwarded_allow_ips`` is no help here: it only decides whose
``X-Forwarded-Proto`` gunicorn believes and never touches ``REMOTE_ADDR``.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from gunicorn import glogging
from pythonjsonlogger.json import JsonFormatter

from mediastore import env, forwarded

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s"
DATE_FORMAT = "[%Y-%m-%d %H:%M:%S %z]"
# Fields of every JSON line, in this order; others (client, method, ...) follow.
JSON_FIELDS = ["asctime", "levelname", "name", "process", "message"]
JSON_RENAMES = {"asctime": "time", "levelname": "level", "name": "logger", "process": "pid"}


def log_format() -> str:
    """``MEDIASTORE_LOG_FORMAT``; anything but text or json stops the server at start-up."""
    value = env.get_str("MEDIASTORE_LOG_FORMAT", "text").lower()
    if value not in FORMATS:
        raise ImproperlyConfigured(f"MEDIASTORE_LOG_FORMAT={value!r} is not one of: {', '.join(FORMATS)}")
    return value


def request_fields(record: logging.LogRecord) -> dict[str, Any]:
    """Client address, method and path of the request a Django log record is about, if any.

    Django attaches the request to its ``django.request`` and ``django.security`` records; only
    these three facts are taken from it (never headers, which carry tokens)."""
    request = getattr(record, "request", None)
    meta = getattr(request, "META", None)
    if not isinstance(meta, dict):
        return {}
    from django.conf import settings

    client = forwarded.client_address(
        meta.get("REMOTE_ADDR", ""), meta.get("HTTP_X_FORWARDED_FOR", ""), settings.MEDIASTORE_TRUSTED_PROXIES
    )
    return {
        "client": client,
        "method": getattr(request, "method", None),
        "path": getattr(request, "path", None),
    }


class TextFormatter(logging.Formatter):
    """gunicorn's line layout, plus ``client=<address>`` on lines about a request."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT, DATE_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        client = request_fields(record).get("client")
        return f"{text} client={client}" if client else text


class JsonLineFormatter(JsonFormatter):
    """One JSON object per line: time, level, logger, pid, message, the record's extra fields
    (``status_code``), and for a record about a request its client, method and path instead of
    the request object itself."""

    def __init__(self) -> None:
        super().__init__(
            JSON_FIELDS,
            rename_fields=JSON_RENAMES,
            datefmt="%Y-%m-%dT%H:%M:%S%z",
            json_ensure_ascii=False,
        )

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict) -> None:
        super().add_fields(log_data, record, message_dict)
        log_data.pop("request", None)
        log_data.update(request_fields(record))


class AccessJsonFormatter(JsonLineFormatter):
    """gunicorn's access lines as JSON: the formatted line as ``message`` and its parts as fields."""

    ATOMS = {
        "client": "h",
        "method": "m",
        "path": "U",
        "query": "q",
        "status": "s",
        "bytes": "B",
        "duration_s": "L",
        "user_agent": "a",
        "referer": "f",
    }

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict) -> None:
        super().add_fields(log_data, record, message_dict)
        atoms = record.args if isinstance(record.args, dict) else {}
        for field, atom in self.ATOMS.items():
            if atom in atoms:
                log_data[field] = atoms[atom]


class ScannerNoise(logging.Filter):
    """A request with a Host header this server does not serve (internet scanners send them all the
    time) is one warning line, without the traceback Django logs it with at ERROR."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        if record.levelno > logging.WARNING:
            record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        return True


def django_logging(level: str) -> dict:
    """``settings.LOGGING``: everything to standard error, as text or JSON lines."""
    formatter = "json" if log_format() == "json" else "text"
    if formatter == "json":
        logging.captureWarnings(True)  # Python's warnings as JSON lines too, not bare text
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "text": {"()": TextFormatter},
            "json": {"()": JsonLineFormatter},
        },
        "filters": {"scanner_noise": {"()": ScannerNoise}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": formatter}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "botocore": {"level": "WARNING"},
            "boto3": {"level": "WARNING"},
            "urllib3": {"level": "WARNING"},
            # pika narrates every connection at INFO; the relay logs its own connects and retries.
            "pika": {"level": "WARNING"},
            "django.security.DisallowedHost": {"filters": ["scanner_noise"]},
        },
    }


class GunicornLogger(glogging.Logger):
    """gunicorn's logger with the client's address as ``h`` and, with MEDIASTORE_LOG_FORMAT=json,
    JSON lines on its error and access logs."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        self.trusted_proxies = env.get_networks(
            "MEDIASTORE_TRUSTED_PROXIES", forwarded.DEFAULT_TRUSTED_PROXIES
        )
        if log_format() == "json":
            for handler in self.error_log.handlers:
                handler.setFormatter(JsonLineFormatter())
            for handler in self.access_log.handlers:
                handler.setFormatter(AccessJsonFormatter())

    def atoms(self, resp, req, environ, request_time) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        remote = environ.get("REMOTE_ADDR") or ""
        if remote:  # empty on a unix socket: gunicorn's "-" stays
            trusted = self.trusted_proxies
            atoms["h"] = forwarded.client_address(remote, environ.get("HTTP_X_FORWARDED_FOR", ""), trusted)
        return atoms
