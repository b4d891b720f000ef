"""moto as a real HTTP endpoint on 127.0.0.1, reached by boto3 through AWS_ENDPOINT_URL.

``moto_server`` (session) runs moto's ThreadedMotoServer once; ``aws`` (per test) points
boto3's own configuration at it through the environment, shields the test from the
machine's AWS config, and resets moto's state. The app builds its clients the same way, so
it is exercised unchanged: no home-made endpoint variable anywhere.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

REGION = "us-east-1"
# moto accepts any credentials; these are its documented dummies.
FAKE_ACCESS_KEY_ID = "testing"
FAKE_SECRET_ACCESS_KEY = "testing"

__all__ = ["AwsRig", "moto_server", "aws"]

# Talk to 127.0.0.1 directly even if the machine has an HTTP(S)_PROXY configured.
_no_proxy_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def reset_moto(endpoint: str) -> None:
    """Forget every resource in every moto backend (POST /moto-api/reset)."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", data=b"", method="POST")
    with _no_proxy_opener.open(request, timeout=30) as response:
        body = json.loads(response.read() or b"{}")
    if response.status != 200 or body.get("status") != "ok":
        raise RuntimeError(f"moto reset failed: {response.status} {body}")


@dataclass
class AwsRig:
    endpoint: str

    def client(self, service_name: str, **kwargs: Any) -> Any:
        """A boto3 client that reaches moto only via AWS_ENDPOINT_URL (no endpoint_url=)."""
        # A new Session resolves credentials/config from the environment as it is now;
        # boto3's module-level default session caches what it saw when first used.
        return boto3.session.Session().client(service_name, **kwargs)

    def reset(self) -> None:
        reset_moto(self.endpoint)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    # Port 0: the OS picks a free port at bind time (no race), and get_host_and_port()
    # reports it. A fixed port that was taken would make start() wait forever, since the
    # server thread dies before setting its ready event.
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws(moto_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AwsRig:
    # Drop everything AWS_* from the real environment: profiles, session tokens, web
    # identity/container credentials, per-service AWS_ENDPOINT_URL_<SERVICE> (which would
    # win over AWS_ENDPOINT_URL) and AWS_IGNORE_CONFIGURED_ENDPOINT_URLS (which would
    # make botocore ignore it).
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    empty = tmp_path / "aws-empty-config"
    empty.write_text("")
    settings = {
        "AWS_ENDPOINT_URL": moto_server,  # botocore >= 1.31 reads this for every service
        "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        # ~/.aws/config and ~/.aws/credentials of whoever runs the suite stay out of it.
        "AWS_CONFIG_FILE": str(empty),
        "AWS_SHARED_CREDENTIALS_FILE": str(empty),
        # Never fall through to the EC2 instance metadata service on a CI runner.
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    # botocore honours HTTP(S)_PROXY for the endpoint too; 127.0.0.1 must bypass any proxy.
    for name in ("NO_PROXY", "no_proxy"):
        current = os.environ.get(name, "")
        monkeypatch.setenv(name, ",".join(filter(None, [current, "127.0.0.1", "localhost"])))
    # boto3.client() uses a module-level session that caches credentials once resolved;
    # start each test without one so app code also sees the settings above.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    reset_moto(moto_server)
    return AwsRig(endpoint=moto_server)
