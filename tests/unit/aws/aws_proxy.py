"""A small HTTP server on 127.0.0.1 in front of moto, for what moto cannot do.

moto never throttles, never answers InvalidRestoreFault, makes a restored instance
"available" at once and reports every instance's LatestRestorableTime as now. The proxy
answers chosen requests with AWS's own error bodies (so botocore's retry handler and error
parsing run for real), can report a DB instance as still "creating" or restorable only up
to a given time, and forwards everything else to moto byte for byte. The bot reaches it
the way it reaches AWS: through AWS_ENDPOINT_URL.

Error bodies follow the wire protocols in botocore's service models: RDS speaks "query"
(XML <ErrorResponse>), Secrets Manager speaks "json" ({"__type": ...}).
"""

from __future__ import annotations

import json
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_HOP_BY_HOP = {"connection", "content-length", "transfer-encoding", "keep-alive", "host"}


@dataclass
class _Failure:
    code: str
    message: str
    times: int
    status: int


@dataclass
class AwsProxy:
    upstream: str
    calls: list[str] = field(default_factory=list)  # every Action seen, in order
    _failures: dict[str, list[_Failure]] = field(default_factory=dict)
    _held: dict[str, str] = field(default_factory=dict)  # instance id -> status shown
    _restorable: dict[str, str] = field(default_factory=dict)  # instance id -> time shown
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> str:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                proxy._handle(self)

            def log_message(self, *args):  # keep pytest output clean
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self.url

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- what the test asks for --------------------------------------------------------

    def fail(self, action: str, code: str, message: str, times: int = 1, status: int = 400):
        """The next ``times`` calls of ``action`` get AWS error ``code``."""
        with self._lock:
            self._failures.setdefault(action, []).append(_Failure(code, message, times, status))

    def hold(self, instance_id: str, status: str = "creating") -> None:
        """DescribeDBInstances reports ``instance_id`` in ``status`` until released."""
        with self._lock:
            self._held[instance_id] = status

    def release(self, instance_id: str) -> None:
        with self._lock:
            self._held.pop(instance_id, None)

    def restorable_until(self, instance_id: str, when: datetime) -> None:
        """DescribeDBInstances reports ``instance_id``'s LatestRestorableTime as ``when``
        (RDS lags when it stops shipping transaction logs; moto always says now)."""
        with self._lock:
            self._restorable[instance_id] = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def count(self, action: str) -> int:
        with self._lock:
            return self.calls.count(action)

    # --- serving ---------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        body = request.rfile.read(int(request.headers.get("Content-Length") or 0))
        target = request.headers.get("X-Amz-Target")
        if target:  # JSON protocol: "secretsmanager.GetSecretValue"
            action, form = target.rpartition(".")[2], {}
        else:  # query protocol: Action=DescribeDBInstances&...
            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            action = form.get("Action", "")
        with self._lock:
            self.calls.append(action)
            failure = self._next_failure(action)
            held = self._held.get(form.get("DBInstanceIdentifier", ""))
            restorable = self._restorable.get(form.get("DBInstanceIdentifier", ""))
        if failure is not None:
            self._answer_error(request, failure, json_protocol=bool(target))
            return
        status, headers, answer = self._forward(request, body)
        if held and action == "DescribeDBInstances":
            answer = answer.replace(
                b"<DBInstanceStatus>available</DBInstanceStatus>",
                f"<DBInstanceStatus>{held}</DBInstanceStatus>".encode(),
            )
        if restorable and action == "DescribeDBInstances":
            answer = re.sub(
                rb"<LatestRestorableTime>[^<]*</LatestRestorableTime>",
                f"<LatestRestorableTime>{restorable}</LatestRestorableTime>".encode(),
                answer,
            )
        self._send(request, status, headers, answer)

    def _next_failure(self, action: str) -> _Failure | None:
        queue = self._failures.get(action) or []
        if not queue:
            return None
        failure = queue[0]
        failure.times -= 1
        if failure.times <= 0:
            queue.pop(0)
        return failure

    def _forward(self, request, body: bytes) -> tuple[int, list, bytes]:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        upstream = urllib.request.Request(
            self.upstream + request.path, data=body, headers=headers, method="POST"
        )
        try:
            with _direct.open(upstream, timeout=30) as response:
                return response.status, list(response.headers.items()), response.read()
        except urllib.error.HTTPError as error:
            return error.code, list(error.headers.items()), error.read()

    def _answer_error(self, request, failure: _Failure, json_protocol: bool) -> None:
        if json_protocol:
            body = json.dumps({"__type": failure.code, "message": failure.message}).encode()
            kind = "application/x-amz-json-1.1"
        else:
            body = (
                "<ErrorResponse><Error><Type>Sender</Type>"
                f"<Code>{failure.code}</Code><Message>{failure.message}</Message>"
                "</Error><RequestId>proxy</RequestId></ErrorResponse>"
            ).encode()
            kind = "text/xml"
        self._send(request, failure.status, [("Content-Type", kind)], body)

    def _send(self, request, status: int, headers: list, body: bytes) -> None:
        request.send_response(status)
        for key, value in headers:
            if key.lower() not in _HOP_BY_HOP:
                request.send_header(key, value)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)


@pytest.fixture
def aws_proxy(aws, monkeypatch) -> Iterator[AwsProxy]:
    """moto behind the proxy: boto3 clients made after this (the bot's included) go
    through it; the rig's own ``aws.client`` too, which is harmless (it forwards)."""
    proxy = AwsProxy(aws.endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.start())
    yield proxy
    proxy.stop()
