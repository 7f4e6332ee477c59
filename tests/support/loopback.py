"""The lifecycle every loopback stand-in shares: serve a handler class from a daemon thread on
127.0.0.1, stop and release the port, and work as a context manager.

Subclasses build their handler class and call `serve`; they only name their own URLs.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class QuietServer(ThreadingHTTPServer):
    """Threads per connection; a client that hung up mid-reply is expected, not an error."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore broken connections (timeout tests hang up on purpose)."""


class LoopbackServer:
    """Start, stop and `with` for a stand-in server; `origin` is `http://127.0.0.1:<port>`."""

    _httpd: ThreadingHTTPServer | None = None

    def start(self) -> Self:
        """Listen and serve from a daemon thread (each subclass says with which handler)."""
        raise NotImplementedError

    def serve(self, handler: type[BaseHTTPRequestHandler], *, host: str = "127.0.0.1",
              port: int = 0, server_class: type[ThreadingHTTPServer] = QuietServer) -> Self:
        """Listen on `host:port` (0 picks a free port) and serve `handler` from a thread."""
        self._httpd = server_class((host, port), handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    @property
    def origin(self) -> str:
        """`http://<host>:<port>` of the running server."""
        assert self._httpd is not None, "start() the server first"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
