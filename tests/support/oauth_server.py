"""A small, real OAuth 2.0 authorization server on loopback, for tests and for `make dev`.

It speaks HTTP on 127.0.0.1 (port 0 picks a free port) from a background thread:

- `GET /authorize` records its query, then redirects to `redirect_uri` with `code` and `state`,
  or with `error=access_denied` when `deny` is set.
- `POST /token` serves the `authorization_code`, `refresh_token` and `client_credentials` grants.
  It checks client authentication (basic or post, or exactly one of them when
  `client_auth_method` is set), the PKCE S256 verifier, that `redirect_uri` matches the one the
  code was issued for, and that a code is used once. Knobs: `expires_in` (None omits it),
  `rotate_refresh_tokens`, `include_refresh_token`, `token_delay` (seconds), `fail_token(...)`
  (queue `invalid_grant`, `server_error` (500) or `slow` answers), `token_response_path` and
  `extra_token_fields`. `token_calls` counts requests; `token_requests` records them.
- `GET|POST /verify[/...]` accepts `Authorization: Bearer <key>`, `X-Api-Key: <key>` or
  `?api_key=<key>` for a key in `api_keys` (or an issued access token), and basic credentials in
  `basic_users`; 200 or 401. `verify_status` forces a status.
- `POST /revoke` records the call (`revoke_requests`) and answers `revoke_status`.

Run `python -m tests.support.oauth_server --port 3010` to keep one running for a local walkthrough.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import secrets
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from tests.support.loopback import LoopbackServer


@dataclass
class IssuedCode:
    """An authorization code and what it was issued for."""

    client_id: str
    redirect_uri: str
    code_challenge: str | None
    code_challenge_method: str | None
    scope: str | None
    used: bool = False


@dataclass
class RecordedRequest:
    """One request as the server saw it (form or JSON body, query, headers)."""

    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str]
    client_id: str | None = None
    client_auth: str | None = None


@dataclass
class OAuthServer(LoopbackServer):
    """The authorization server's configuration, state and records; thread-safe."""

    client_id: str = "loopback-client"
    client_secret: str = "loopback-secret"
    client_auth_method: str | None = None
    expires_in: int | None = 3600
    rotate_refresh_tokens: bool = True
    include_refresh_token: bool = True
    token_delay: float = 0.0
    token_response_path: str | None = None
    extra_token_fields: dict[str, Any] = field(default_factory=dict)
    deny: bool = False
    api_keys: set[str] = field(default_factory=set)
    basic_users: dict[str, str] = field(default_factory=dict)
    verify_status: int | None = None
    revoke_status: int = 200
    host: str = "127.0.0.1"
    port: int = 0

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.codes: dict[str, IssuedCode] = {}
        self.refresh_tokens: dict[str, bool] = {}
        self.access_tokens: set[str] = set()
        self.revoked: set[str] = set()
        self.authorize_requests: list[dict[str, str]] = []
        self.token_requests: list[RecordedRequest] = []
        self.verify_requests: list[RecordedRequest] = []
        self.revoke_requests: list[RecordedRequest] = []
        self.token_failures: deque[str] = deque()

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>` once started."""
        return self.origin

    @property
    def token_calls(self) -> int:
        """How many requests reached /token (failed ones included)."""
        with self.lock:
            return len(self.token_requests)

    def url(self, path: str) -> str:
        """An absolute URL on this server."""
        return self.base_url + path

    def start(self) -> OAuthServer:
        """Listen and serve from a daemon thread."""
        server = self

        class Handler(_Handler):
            oauth = server

        return self.serve(Handler, host=self.host, port=self.port)

    def fail_token(self, *modes: str) -> None:
        """Queue answers for the next /token requests: invalid_grant, server_error or slow."""
        with self.lock:
            self.token_failures.extend(modes)

    def issue_tokens(self, scope: str | None = None, *, refresh: bool = True) -> dict[str, Any]:
        """Mint an access token (and a refresh token) as a token response body."""
        access = "at_" + secrets.token_urlsafe(16)
        body: dict[str, Any] = {"access_token": access, "token_type": "Bearer"}
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        if scope:
            body["scope"] = scope
        with self.lock:
            self.access_tokens.add(access)
            if refresh and self.include_refresh_token:
                token = "rt_" + secrets.token_urlsafe(16)
                self.refresh_tokens[token] = True
                body["refresh_token"] = token
        if self.token_response_path:
            nested: dict[str, Any] = body
            for part in reversed(self.token_response_path.split(".")):
                nested = {part: nested}
            body = nested
        return {**body, **self.extra_token_fields}


class _Handler(BaseHTTPRequestHandler):
    oauth: OAuthServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *_: Any) -> None:
        """Stay quiet; tests read the records instead."""

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/authorize":
            self._authorize()
        elif path.startswith("/verify"):
            self._verify()
        else:
            self._json(404, {"error": "not_found"})

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if path == "/token":
            self._token()
        elif path == "/revoke":
            self._revoke()
        elif path.startswith("/verify"):
            self._verify()
        else:
            self._json(404, {"error": "not_found"})

    def _record(self) -> RecordedRequest:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        if "json" in (self.headers.get("Content-Type") or ""):
            form = {k: str(v) for k, v in (json.loads(raw or "{}")).items()}
        else:
            form = dict(parse_qsl(raw, keep_blank_values=True))
        request = RecordedRequest(self.command, parts.path, dict(parse_qsl(parts.query)), form,
                                  {k.lower(): v for k, v in self.headers.items()})
        basic = _basic(request.headers.get("authorization"))
        if basic is not None:
            request.client_id, request.client_auth = basic[0], "client_secret_basic"
        elif "client_id" in form:
            request.client_id = form["client_id"]
            request.client_auth = "client_secret_post" if "client_secret" in form else "none"
        return request

    def _authorize(self) -> None:
        server = self.oauth
        params = dict(parse_qsl(urlsplit(self.path).query))
        with server.lock:
            server.authorize_requests.append(params)
        redirect_uri, state = params.get("redirect_uri", ""), params.get("state")
        if params.get("client_id") != server.client_id or not redirect_uri:
            self._json(400, {"error": "invalid_request", "error_description": "unknown client"})
            return
        if server.deny:
            answer = {"error": "access_denied", "error_description": "the user said no"}
        else:
            code = "code_" + secrets.token_urlsafe(16)
            with server.lock:
                server.codes[code] = IssuedCode(server.client_id, redirect_uri,
                                                params.get("code_challenge"),
                                                params.get("code_challenge_method"),
                                                params.get("scope"))
            answer = {"code": code}
        if state is not None:
            answer["state"] = state
        self._redirect(_with_query(redirect_uri, answer))

    def _token(self) -> None:
        server = self.oauth
        request = self._record()
        with server.lock:
            server.token_requests.append(request)
            mode = server.token_failures.popleft() if server.token_failures else None
        delay = server.token_delay + (2.0 if mode == "slow" else 0.0)
        if delay:
            time.sleep(delay)
        if mode == "invalid_grant":
            self._json(400, {"error": "invalid_grant", "error_description": "forced failure"})
            return
        if mode == "server_error":
            self._json(500, {"error": "server_error"})
            return
        problem = self._client_problem(request)
        if problem:
            self._json(401, {"error": "invalid_client", "error_description": problem})
            return
        grant = request.form.get("grant_type")
        handler = {"authorization_code": self._code_grant, "refresh_token": self._refresh_grant,
                   "client_credentials": self._client_grant}.get(grant or "")
        if handler is None:
            self._json(400, {"error": "unsupported_grant_type"})
            return
        status, body = handler(request.form)
        self._json(status, body)

    def _client_problem(self, request: RecordedRequest) -> str | None:
        server = self.oauth
        if server.client_auth_method and request.client_auth != server.client_auth_method:
            return f"client authentication must be {server.client_auth_method}"
        if request.client_auth == "client_secret_basic":
            pair = _basic(request.headers.get("authorization"))
            presented = pair[1] if pair else None
        else:
            presented = request.form.get("client_secret")
        if request.client_id != server.client_id or presented != server.client_secret:
            return "unknown client or wrong secret"
        return None

    def _code_grant(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        server = self.oauth
        with server.lock:
            issued = server.codes.get(form.get("code", ""))
            reused = issued is not None and issued.used
            if issued is not None:
                issued.used = True
        if issued is None or reused:
            return 400, {"error": "invalid_grant", "error_description": "unknown or used code"}
        if form.get("redirect_uri") != issued.redirect_uri:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri mismatch"}
        if issued.code_challenge is not None:
            verifier = form.get("code_verifier", "")
            digest = hashlib.sha256(verifier.encode()).digest()
            expected = base64.urlsafe_b64encode(digest).decode().rstrip("=")
            if issued.code_challenge_method != "S256" or expected != issued.code_challenge:
                return 400, {"error": "invalid_grant", "error_description": "PKCE check failed"}
        return 200, server.issue_tokens(issued.scope)

    def _refresh_grant(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        server = self.oauth
        token = form.get("refresh_token", "")
        with server.lock:
            valid = server.refresh_tokens.get(token, False) and token not in server.revoked
            if valid and server.rotate_refresh_tokens and server.include_refresh_token:
                server.refresh_tokens[token] = False
        if not valid:
            return 400, {"error": "invalid_grant", "error_description": "unknown refresh token"}
        rotate = server.rotate_refresh_tokens
        return 200, server.issue_tokens(refresh=rotate)

    def _client_grant(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        return 200, self.oauth.issue_tokens(form.get("scope"), refresh=False)

    def _verify(self) -> None:
        server = self.oauth
        request = self._record()
        with server.lock:
            server.verify_requests.append(request)
            keys = server.api_keys | (server.access_tokens - server.revoked)
        headers = request.headers
        bearer = (headers.get("authorization") or "").removeprefix("Bearer ").strip()
        presented = {bearer, headers.get("x-api-key"), request.query.get("api_key")}
        basic = _basic(headers.get("authorization"))
        accepted = bool(presented & keys) or (
            basic is not None and server.basic_users.get(basic[0]) == basic[1])
        status = server.verify_status or (200 if accepted else 401)
        self._json(status, {"ok": status == 200})

    def _revoke(self) -> None:
        server = self.oauth
        request = self._record()
        with server.lock:
            server.revoke_requests.append(request)
            if server.revoke_status < 400:
                server.revoked.add(request.form.get("token", ""))
        self._json(server.revoke_status, {} if server.revoke_status < 400 else
                   {"error": "server_error"})

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()


def _basic(header: str | None) -> tuple[str, str] | None:
    if not header or not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except ValueError:
        return None
    return unquote(user), unquote(password)


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = "&".join(filter(None, [parts.query, urlencode(params)]))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def main() -> None:
    """Serve until interrupted, printing the settings a generic `oauth2` integration needs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=3010)
    parser.add_argument("--client-id", default="loopback-client")
    parser.add_argument("--client-secret", default="loopback-secret")
    parser.add_argument("--expires-in", type=int, default=3600)
    parser.add_argument("--deny", action="store_true", help="answer every authorization with "
                        "error=access_denied")
    options = parser.parse_args()
    server = OAuthServer(client_id=options.client_id, client_secret=options.client_secret,
                         expires_in=options.expires_in, deny=options.deny, port=options.port)
    server.start()
    sys.stdout.write(f"loopback OAuth server on {server.base_url}\n"
                     f"  authorization_url  {server.url('/authorize')}\n"
                     f"  token_url          {server.url('/token')}\n"
                     f"  client id/secret   {server.client_id} / {server.client_secret}\n")
    sys.stdout.flush()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
