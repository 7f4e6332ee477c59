"""A webhook receiver on 127.0.0.1 for tests: records every delivery, fails on demand."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.loopback import LoopbackServer


@dataclass
class Delivery:
    """One POST the receiver got: its headers (lower-case names), body and the status sent."""

    headers: dict[str, str]
    body: bytes
    status: int


class WebhookReceiver(LoopbackServer):
    """Answers 200 unless told otherwise: `fail_next(n)` queues failures, `always` sets a status."""

    def __init__(self, always: int = 200) -> None:
        self.always = always
        self.lock = threading.Lock()
        self.deliveries: list[Delivery] = []
        self._planned: deque[int] = deque()

    @property
    def url(self) -> str:
        """The URL to configure as a webhook target."""
        return f"{self.origin}/hooks"

    def fail_next(self, count: int, status: int = 500) -> None:
        """Answer the next `count` deliveries with `status`."""
        with self.lock:
            self._planned.extend([status] * count)

    def accepted(self) -> list[Delivery]:
        """The deliveries answered with a 2xx."""
        with self.lock:
            return [d for d in self.deliveries if 200 <= d.status < 300]

    def _answer(self, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            status = self._planned.popleft() if self._planned else self.always
            self.deliveries.append(Delivery(headers, body, status))
        return status

    def start(self) -> WebhookReceiver:
        """Listen on an ephemeral port, serving from a daemon thread."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = receiver._answer(headers, body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                return

        return self.serve(Handler)
