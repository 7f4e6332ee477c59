"""Local API throughput: `GET /connection/{id}` through `python -m devserver` (`make dev`).

The dev server runs as its own process on free loopback ports with TERAPI_SECRET_KEY set; an
integration and a connection are created over HTTP; then this process (the second process)
sends a bounded load: `concurrency` threads, each on one keep-alive `http.client` connection,
until `requests` replies or `seconds` have passed, whichever comes first.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from typing import Any

from bench.common import REPO_ROOT, free_port, median, ms, percentile, progress

SECRET_KEY = "bench-throughput-key"  # noqa: S105 - a local, throwaway key
PATH = "/connection/user-1?provider_config_key=bench"


def _call(port: int, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        data = json.dumps(body).encode() if body is not None else None
        connection.request(method, path, body=data, headers={
            "Authorization": f"Bearer {SECRET_KEY}", "Content-Type": "application/json"})
        reply = connection.getresponse()
        return reply.status, reply.read()
    finally:
        connection.close()


def _wait_until_serving(process: subprocess.Popen[bytes], port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the dev server exited with {process.returncode}")
        try:
            if _call(port, "GET", "/providers")[0] == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the dev server did not start in time")


def _load(port: int, requests: int, seconds: float, concurrency: int) -> dict[str, Any]:
    latencies: list[float] = []
    failures: list[int] = []
    lock = threading.Lock()
    remaining = [requests]
    deadline = time.monotonic() + seconds

    def worker() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Authorization": f"Bearer {SECRET_KEY}"}
        while time.monotonic() < deadline:
            with lock:
                if remaining[0] <= 0:
                    break
                remaining[0] -= 1
            began = time.perf_counter()
            try:
                connection.request("GET", PATH, headers=headers)
                reply = connection.getresponse()
                reply.read()
                status = reply.status
                if reply.getheader("Connection", "").lower() == "close":
                    connection.close()
            except (OSError, http.client.HTTPException):
                connection.close()
                status = 0
            elapsed = time.perf_counter() - began
            with lock:
                latencies.append(elapsed)
                if status != 200:
                    failures.append(status)
        connection.close()

    began = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    return {"requests": len(latencies), "seconds": round(wall, 2),
            "requests_per_second": round(len(latencies) / wall, 1),
            "p50_ms": ms(median(latencies)), "p99_ms": ms(percentile(latencies, 0.99)),
            "non_200": len(failures), "concurrency": concurrency}


def run(requests: int = 2000, seconds: float = 20.0, concurrency: int = 8) -> dict[str, Any]:
    """Start the dev server, seed it, load it, stop it; returns requests/s and latency."""
    port, aws_port = free_port(), free_port()
    env = {**os.environ, "TERAPI_SECRET_KEY": SECRET_KEY, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("AWS_ENDPOINT_URL", None)
    command = [sys.executable, "-m", "devserver", "--port", str(port), "--aws-port", str(aws_port)]
    progress(f"throughput: starting the dev server on 127.0.0.1:{port}")
    server = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        _wait_until_serving(server, port, 120)
        status, body = _call(port, "POST", "/integration", {
            "provider_config_key": "bench", "provider": "oauth2", "oauth_client_id": "c",
            "oauth_client_secret": "s", "authorization_url": "http://127.0.0.1:9/authorize",
            "token_url": "http://127.0.0.1:9/token"})
        if status != 200:
            raise RuntimeError(f"seeding the integration failed: {status} {body[:200]!r}")
        status, body = _call(port, "POST", "/connection", {
            "connection_id": "user-1", "provider_config_key": "bench",
            "credentials": {"access_token": "at-1", "expires_at": "2999-01-01T00:00:00Z"}})
        if status != 200:
            raise RuntimeError(f"seeding the connection failed: {status} {body[:200]!r}")
        _load(port, 50, 10, 2)
        progress(f"throughput: {requests} requests or {seconds:.0f} s, concurrency {concurrency}")
        return _load(port, requests, seconds, concurrency)
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
