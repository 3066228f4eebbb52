"""A real S3 endpoint for tests: moto in server mode, on a free port of 127.0.0.1.

``s3_server`` (session) starts the server once; ``s3_bucket`` (function) makes a fresh bucket.
No real AWS configuration is consulted: credentials and region are explicit, the shared config
files point nowhere and ``127.0.0.1`` bypasses any proxy from the environment.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from moto.server import ThreadedMotoServer

REGION = "us-east-1"

_ENVIRONMENT = {
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_DEFAULT_REGION": REGION,
}
_CLEARED = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
)


def free_port() -> int:
    """A port of 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A moto S3 server for the whole test session."""
    with pytest.MonkeyPatch.context() as patch:
        for name in _CLEARED:
            patch.delenv(name, raising=False)
        for name, value in _ENVIRONMENT.items():
            patch.setenv(name, value)
        no_proxy = ",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1", "localhost"]))
        patch.setenv("NO_PROXY", no_proxy)
        patch.setenv("no_proxy", no_proxy)
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
