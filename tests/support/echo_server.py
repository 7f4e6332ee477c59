"""A loopback HTTP server that echoes what it receives, with scripted replies, for proxy tests.

It listens on 127.0.0.1 (port 0 picks a free port) from a background thread. Every request is
recorded in `received` (method, raw path, raw query, header pairs, body bytes) and, unless a
scripted reply is queued, answered 200 with that request as JSON:
`{"method", "path", "query", "headers", "body"}` (`body_base64` instead when it is not UTF-8).

`script(Reply(...), ...)` queues replies for the next requests, in order: a status with headers
(a 401, a 429 with `Retry-After`, a run of 5xx), a fixed body (binary, large), `mirror=True` to
send the request's body and content type back, or `delay` seconds before answering (slow).

`POST /oauth/token` is a tiny OAuth 2.0 token endpoint for refresh tests: it answers the next
`fresh-token-<n>` access token (counted in `token_requests`), or `token_error` when set.

Run `python -m tests.support.echo_server --port 3020` to keep one running for `make dev`.
"""

from __future__ import annotations

import argparse
import base64
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl

from tests.support.loopback import LoopbackServer

TOKEN_PATH = "/oauth/token"


@dataclass
class Reply:
    """One scripted answer; `body=None` echoes the request as JSON."""

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | None = None
    mirror: bool = False
    delay: float = 0.0


@dataclass
class Received:
    """One request as it arrived: raw path and query, header pairs in order, body bytes."""

    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of a header, case-insensitively."""
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def header_names(self) -> set[str]:
        """Every header name sent, lower case."""
        return {k.lower() for k, _ in self.headers}

    def as_json(self) -> dict[str, Any]:
        """The echo reply's body."""
        echoed: dict[str, Any] = {"method": self.method, "path": self.path, "query": self.query,
                                  "headers": {k.lower(): v for k, v in self.headers}}
        try:
            echoed["body"] = self.body.decode("utf-8")
        except UnicodeDecodeError:
            echoed["body_base64"] = base64.b64encode(self.body).decode()
        return echoed


class EchoServer(LoopbackServer):
    """The server; use as a context manager, or `start()` and `stop()`."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.token_requests: list[dict[str, str]] = []
        self.token_error: tuple[int, str] | None = None
        self._replies: deque[Reply] = deque()

    def start(self, port: int = 0) -> EchoServer:
        """Listen on 127.0.0.1 and serve from a daemon thread."""
        return self.serve(_handler_for(self), port=port)

    @property
    def url(self) -> str:
        """The base URL, `http://127.0.0.1:<port>`."""
        return self.origin

    def script(self, *replies: Reply) -> None:
        """Queue replies for the next non-token requests, in order."""
        with self.lock:
            self._replies.extend(replies)

    def calls(self) -> list[Received]:
        """The requests received so far, token requests excluded."""
        with self.lock:
            return list(self.received)

    def _next_reply(self, request: Received) -> Reply:
        with self.lock:
            self.received.append(request)
            return self._replies.popleft() if self._replies else Reply()

    def _token(self, body: bytes) -> tuple[int, dict[str, Any]]:
        with self.lock:
            form = dict(parse_qsl(body.decode("utf-8", "replace")))
            self.token_requests.append(form)
            if self.token_error is not None:
                status, error = self.token_error
                return status, {"error": error}
            count = len(self.token_requests)
        return 200, {"access_token": f"fresh-token-{count}", "token_type": "Bearer",
                     "expires_in": 3600, "refresh_token": f"refresh-{count}"}


def _handler_for(server: EchoServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            path, _, query = self.path.partition("?")
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length > 0 else b""
            if self.command == "POST" and path == TOKEN_PATH:
                status, answer = server._token(body)
                self._write(status, [("Content-Type", "application/json")],
                            json.dumps(answer).encode())
                return
            request = Received(self.command, path, query, list(self.headers.items()), body)
            reply = server._next_reply(request)
            if reply.delay:
                time.sleep(reply.delay)
            headers = list(reply.headers)
            if reply.mirror:
                content = body
                headers.append(("Content-Type", self.headers.get("Content-Type") or
                                "application/octet-stream"))
            elif reply.body is not None:
                content = reply.body
            else:
                content = json.dumps(request.as_json()).encode()
                headers.append(("Content-Type", "application/json"))
            self._write(reply.status, headers, content)

        def _write(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve  # noqa: N815
        do_HEAD = do_OPTIONS = _serve  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            """Stay quiet: tests read `received` instead."""

    return Handler


def main() -> None:
    """Serve until interrupted (a local upstream for trying the proxy with `make dev`)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=3020)
    server = EchoServer().start(parser.parse_args().port)
    print(f"echo server on {server.url}")  # noqa: T201 - a CLI's output
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
