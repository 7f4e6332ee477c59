"""`make dev`'s command serves the API over real HTTP on an embedded AWS, and stops cleanly.

The dev server runs as a subprocess (`python -m devserver`), exactly as `make dev` starts it;
every request goes to 127.0.0.1 only.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SECRET_KEY = "test-key-e2e-0123456789"
CLIENT_SECRET = "client-secret-e2e-do-not-echo"
ACCESS_TOKEN = "access-token-e2e-do-not-echo"
CONNECTION_ID = "user/42 🚀 ünïcode"
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Running:
    """The dev server subprocess and where to reach it."""

    process: subprocess.Popen[bytes]
    url: str
    output: Path

    def banner_value(self, label: str) -> str:
        """A value the dev server printed on start, e.g. `Embedded AWS`."""
        match = re.search(rf"{re.escape(label)}:\s+(\S+)", self.output.read_text())
        assert match, f"the dev server did not print '{label}'"
        return match.group(1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def send(url: str, method: str, path: str, *, key: str | None = SECRET_KEY,
         body: Any = None, raw: bytes | None = None) -> tuple[int, Any]:
    """One HTTP request; returns the status and the JSON body (or `None` when empty)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url + path, data=data, method=method)
    if key is not None:
        request.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with _NO_PROXY.open(request, timeout=15) as reply:
            status, text = reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    return status, (json.loads(text) if text else None)


def wait_until_serving(running: Running, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            pytest.fail("the dev server exited early:\n" + running.output.read_text()[-3000:])
        try:
            send(running.url, "GET", "/providers", key=None)
        except OSError:
            time.sleep(0.2)
            continue
        if "Press Ctrl-C" in running.output.read_text():
            return
        time.sleep(0.2)
    pytest.fail("the dev server did not start in time:\n" + running.output.read_text()[-3000:])


@pytest.fixture
def dev_server(tmp_path: Path) -> Iterator[Running]:
    port, aws_port = free_port(), free_port()
    env = {**os.environ, "TERAPI_SECRET_KEY": SECRET_KEY, "PYTHONUNBUFFERED": "1",
           "NO_PROXY": "127.0.0.1,localhost"}
    output = tmp_path / "devserver.log"
    with output.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603 - fixed argv, our own interpreter
            [sys.executable, "-m", "devserver", "--port", str(port), "--aws-port",
             str(aws_port)], cwd=REPO_ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
    running = Running(process, f"http://127.0.0.1:{port}", output)
    try:
        wait_until_serving(running)
        yield running
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def connection_secrets(endpoint: str) -> list[dict[str, Any]]:
    """Every connection-credentials secret in the embedded AWS, scheduled deletions included."""
    client = boto3.client("secretsmanager", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    listed = client.list_secrets(IncludePlannedDeletion=True)["SecretList"]
    return [s for s in listed
            if {"Key": "terapi:kind", "Value": "connections"} in s.get("Tags", [])]


def tag_of(connection_id: str) -> str:
    """The tag value the API gives an id that tags cannot hold verbatim."""
    return "sha256:" + hashlib.sha256(connection_id.encode()).hexdigest()


def assert_error(status: int, body: Any, expected: int) -> None:
    assert status == expected, body
    assert set(body) == {"error", "message"}, body


def test_make_dev_serves_the_api_end_to_end_and_stops_on_sigint(dev_server: Running):
    url = dev_server.url
    encoded_id = quote(CONNECTION_ID, safe="")

    assert_error(*send(url, "GET", "/connection", key=None), 401)
    assert_error(*send(url, "GET", "/connection", key="wrong-key"), 401)

    status, integration = send(url, "POST", "/integration", body={
        "provider_config_key": "github-e2e", "provider": "github",
        "oauth_client_id": "client-id-e2e", "oauth_client_secret": CLIENT_SECRET})
    assert status == 200, integration
    assert CLIENT_SECRET not in json.dumps(integration)
    status, fetched = send(url, "GET", "/integration/github-e2e")
    assert status == 200, fetched
    assert fetched["provider"] == "github"

    for connection_id in (CONNECTION_ID, "second"):
        status, created = send(url, "POST", "/connection", body={
            "connection_id": connection_id, "provider_config_key": "github-e2e",
            "credentials": {"type": "oauth2", "access_token": ACCESS_TOKEN,
                            "refresh_token": "refresh-e2e"}})
        assert status == 200, created
        assert ACCESS_TOKEN not in json.dumps(created)

    status, connection = send(url, "GET",
                              f"/connection/{encoded_id}?provider_config_key=github-e2e")
    assert status == 200, connection
    assert connection["id"] == CONNECTION_ID
    assert ACCESS_TOKEN not in json.dumps(connection)

    status, first = send(url, "GET", "/connection?provider_config_key=github-e2e&limit=1")
    assert status == 200, first
    assert len(first["connections"]) == 1 and first["next_cursor"]
    status, second = send(url, "GET", "/connection?provider_config_key=github-e2e&limit=1"
                                      f"&cursor={quote(first['next_cursor'], safe='')}")
    assert status == 200, second
    listed = {c["id"] for c in first["connections"] + second["connections"]}
    assert listed == {CONNECTION_ID, "second"}

    endpoint = dev_server.banner_value("Embedded AWS")
    assert endpoint.startswith("http://127.0.0.1:")
    secrets_before = {s["ARN"] for s in connection_secrets(endpoint)}
    assert len(secrets_before) == 2

    status, _ = send(url, "DELETE", f"/connection/{encoded_id}?provider_config_key=github-e2e")
    assert status == 204
    assert_error(*send(url, "GET", f"/connection/{encoded_id}?provider_config_key=github-e2e"),
                 404)
    assert_error(*send(url, "POST", "/connection", raw=b'{"connection_id": '), 400)

    after = {s["ARN"]: s for s in connection_secrets(endpoint)}
    deleted_tag = {"Key": "terapi:connection_id", "Value": tag_of(CONNECTION_ID)}
    [gone] = [arn for arn in secrets_before
              if arn not in after or deleted_tag in after[arn].get("Tags", [])]
    assert gone not in after or after[gone].get("DeletedDate"), "secret not scheduled for deletion"
    assert all(not s.get("DeletedDate") for arn, s in after.items() if arn != gone)

    started = time.monotonic()
    dev_server.process.send_signal(signal.SIGINT)
    assert dev_server.process.wait(timeout=10) == 0
    assert time.monotonic() - started < 10
    log = dev_server.output.read_text()
    assert CLIENT_SECRET not in log
    assert ACCESS_TOKEN not in log


def test_a_port_in_use_is_a_one_line_error_and_exit_code_1(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(  # noqa: S603 - fixed argv, our own interpreter
            [sys.executable, "-m", "devserver", "--port", str(port), "--aws-port",
             str(free_port())], cwd=REPO_ROOT, capture_output=True, timeout=60, check=False)

    assert result.returncode == 1
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "already in use" in lines[0]
