"""A real S3 endpoint: moto in server mode on a free port of 127.0.0.1, in this process (the
``s3_server`` session fixture, ``s3_bucket`` for a fresh bucket) or in its own (``MotoProcess``,
for benchmarks that must not count moto's memory as theirs).

No real AWS configuration is consulted: credentials and region are explicit, the shared config
files point nowhere and ``127.0.0.1`` bypasses any proxy from the environment (``ISOLATION``).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config

from tests.support.ports import free_port
from tests.support.processes import HarnessError, Process

REGION = "us-east-1"

# Set for every S3 client and server of the harness ...
ISOLATION = {
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_DEFAULT_REGION": REGION,
}
# ... and these removed: nothing of the caller's AWS identity or proxies may leak in.
CLEARED = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
)
PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")


def loopback_no_proxy() -> str:
    """NO_PROXY with 127.0.0.1 and localhost added to what the environment has."""
    return ",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1", "localhost"]))


def isolated_environment(env: dict[str, str], *, drop_proxies: bool = False) -> dict[str, str]:
    """``env`` without the caller's AWS identity (and proxies, with ``drop_proxies``), with
    ``ISOLATION`` and loopback exempt from any proxy."""
    dropped = CLEARED + (PROXIES if drop_proxies else ())
    isolated = {name: value for name, value in env.items() if name not in dropped}
    no_proxy = loopback_no_proxy()
    return {**isolated, **ISOLATION, "NO_PROXY": no_proxy, "no_proxy": no_proxy}


@dataclass
class S3Server:
    """A running moto server and the (arbitrary) credentials tests use with it."""

    url: str
    access_key: str = "testing"
    secret_key: str = field(default="testing-secret", repr=False)

    def client(
        self, service: str = "s3", access_key: str | None = None, secret_key: str | None = None
    ) -> Any:
        """A boto3 client for this server (``service`` may be ``"iam"`` too)."""
        return boto3.session.Session().client(
            service,
            endpoint_url=self.url,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            region_name=REGION,
            config=Config(
                signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 1}
            ),
        )

    def create_credentials(self) -> tuple[str, str]:
        """An IAM user allowed everything on S3; returns its (access key id, secret key).

        Only meaningful together with ``enforce_auth``: by default moto accepts any credentials.
        """
        iam = self.client("iam")
        user = f"tester-{uuid.uuid4().hex[:12]}"
        iam.create_user(UserName=user)
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
        }
        iam.put_user_policy(UserName=user, PolicyName="s3-all", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=user)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    @contextlib.contextmanager
    def enforce_auth(self) -> Iterator[None]:
        """Make moto check signatures and IAM permissions while inside the block.

        Moto's switch is process-wide (``/moto-api/reset-auth``); it is switched back off after.
        """
        response = requests.post(f"{self.url}/moto-api/reset-auth", data=b"0", timeout=10)
        response.raise_for_status()
        try:
            yield
        finally:
            requests.post(f"{self.url}/moto-api/reset-auth", data=b"inf", timeout=10).raise_for_status()


class MotoProcess:
    """``python -m moto.server`` on a free port of 127.0.0.1 in a process of its own, logging to
    ``workdir/moto.log``; ``server`` is its S3Server once ``start`` returned."""

    ATTEMPTS = 3  # a free port may be taken between the probe and moto's bind

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.log = workdir / "moto.log"
        self.env = env
        self.process: Process | None = None
        self.server: S3Server | None = None

    def start(self, timeout: float = 60) -> S3Server:
        for _attempt in range(self.ATTEMPTS):
            port = free_port()
            command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
            self.process = Process("moto server", command, self.env, self.log)
            url = f"http://127.0.0.1:{port}"
            try:
                self.process.wait_until(
                    lambda url=url: requests.get(f"{url}/moto-api/", timeout=5).ok, timeout, 0.2
                )
            except HarnessError:
                in_use = "in use" in self.log.read_text(errors="replace")
                self.process.stop()
                if not in_use:
                    raise
                continue
            self.server = S3Server(url)
            return self.server
        raise HarnessError(f"moto server: no free port after {self.ATTEMPTS} attempts")

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A moto S3 server, in this process, for the whole test session."""
    from moto.server import ThreadedMotoServer

    with pytest.MonkeyPatch.context() as patch:
        for name in CLEARED:
            patch.delenv(name, raising=False)
        for name, value in isolated_environment({}).items():
            patch.setenv(name, value)
        port = free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            yield S3Server(url=f"http://127.0.0.1:{port}")
        finally:
            server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> Iterator[str]:
    """A new, empty bucket on ``s3_server``; its name."""
    name = f"test-{uuid.uuid4().hex[:20]}"
    s3_server.client().create_bucket(Bucket=name)
    yield name
