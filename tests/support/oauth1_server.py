"""A small, real OAuth 1.0a (RFC 5849) provider on loopback, for the hosted connect flow's tests.

It speaks HTTP on 127.0.0.1 (port 0 picks a free port) from a background thread:

- `POST /request_token` checks the HMAC-SHA1 signature (consumer secret only), records the
  `oauth_callback`, and answers a request token, its secret and `oauth_callback_confirmed=true`.
  `request_token_status` forces another status (e.g. 500).
- `GET /authorize?oauth_token=…` records its query, then redirects to the recorded callback with
  `oauth_token` and `oauth_verifier`, or with `denied=<token>` when `deny` is set.
- `POST /access_token` checks the signature with the request token's secret and the verifier,
  uses a request token once, and answers an access token, its secret and `screen_name`.

Signatures are checked with `oauthlib.oauth1.rfc5849.signature`, never computed by hand.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from oauthlib.oauth1.rfc5849 import signature

from tests.support.loopback import LoopbackServer


@dataclass
class RequestToken:
    """A request token: its secret, callback, verifier once authorized, and whether it was used."""

    secret: str
    callback: str
    verifier: str | None = None
    used: bool = False


@dataclass
class OAuth1Server(LoopbackServer):
    """The provider's configuration, issued tokens and call records; thread-safe."""

    consumer_key: str = "loopback-consumer"
    consumer_secret: str = "loopback-consumer-secret"
    screen_name: str = "ada"
    deny: bool = False
    request_token_status: int = 200
    host: str = "127.0.0.1"
    port: int = 0
    request_tokens: dict[str, RequestToken] = field(default_factory=dict)
    access_tokens: dict[str, str] = field(default_factory=dict)
    calls: list[tuple[str, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()

    def url(self, path: str) -> str:
        """An absolute URL on this server."""
        return self.origin + path

    def calls_to(self, path: str) -> list[int]:
        """The statuses answered on `path`, in order."""
        with self.lock:
            return [status for called, status in self.calls if called == path]

    def start(self) -> OAuth1Server:
        """Listen and serve from a daemon thread."""
        server = self

        class Handler(_Handler):
            provider = server

        return self.serve(Handler, host=self.host, port=self.port)


class _Handler(BaseHTTPRequestHandler):
    provider: OAuth1Server
    protocol_version = "HTTP/1.1"

    def log_message(self, *_: Any) -> None:
        """Stay quiet; tests read the records instead."""

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != "/authorize":
            self._reply("/unknown", 404, {})
            return
        token = dict(parse_qsl(parts.query)).get("oauth_token", "")
        provider = self.provider
        with provider.lock:
            issued = provider.request_tokens.get(token)
            if issued is not None and not provider.deny:
                issued.verifier = "v_" + secrets.token_urlsafe(16)
        if issued is None:
            self._reply("/authorize", 400, {"error": "unknown_token"})
            return
        query = ({"denied": token} if provider.deny
                 else {"oauth_token": token, "oauth_verifier": issued.verifier})
        self._redirect(f"{issued.callback}?{urlencode(query)}")

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        params = dict(signature.collect_parameters(headers=dict(self.headers.items()),
                                                   exclude_oauth_signature=False))
        if path == "/request_token":
            self._request_token(params)
        elif path == "/access_token":
            self._access_token(params)
        else:
            self._reply(path, 404, {})

    def _request_token(self, params: dict[str, str]) -> None:
        provider = self.provider
        if provider.request_token_status != 200:
            self._reply("/request_token", provider.request_token_status, {"error": "down"})
            return
        if not self._signed(params, ""):
            self._reply("/request_token", 401, {"error": "invalid_signature"})
            return
        token, secret = "rq_" + secrets.token_urlsafe(16), "rqs_" + secrets.token_urlsafe(16)
        with provider.lock:
            provider.request_tokens[token] = RequestToken(secret, params["oauth_callback"])
        self._reply("/request_token", 200, {"oauth_token": token, "oauth_token_secret": secret,
                                            "oauth_callback_confirmed": "true"})

    def _access_token(self, params: dict[str, str]) -> None:
        provider = self.provider
        with provider.lock:
            issued = provider.request_tokens.get(params.get("oauth_token", ""))
            valid = (issued is not None and not issued.used and issued.verifier is not None
                     and params.get("oauth_verifier") == issued.verifier
                     and self._signed(params, issued.secret))
            if valid and issued is not None:
                issued.used = True
                token = "at_" + secrets.token_urlsafe(16)
                secret = "ats_" + secrets.token_urlsafe(16)
                provider.access_tokens[token] = secret
        if not valid:
            self._reply("/access_token", 401, {"error": "invalid_token"})
            return
        self._reply("/access_token", 200, {"oauth_token": token, "oauth_token_secret": secret,
                                           "user_id": "42", "screen_name": provider.screen_name})

    def _signed(self, params: dict[str, str], token_secret: str) -> bool:
        provider = self.provider
        if params.get("oauth_consumer_key") != provider.consumer_key or params.get(
                "oauth_signature_method") != "HMAC-SHA1":
            return False
        uri = signature.base_string_uri(provider.url(urlsplit(self.path).path))
        collected = signature.collect_parameters(headers=dict(self.headers.items()))
        base = signature.signature_base_string(
            "POST", uri, signature.normalize_parameters(collected))
        keys = SimpleNamespace(client_secret=provider.consumer_secret,
                               resource_owner_secret=token_secret)
        expected = signature.sign_hmac_sha1_with_client(base, keys)
        return secrets.compare_digest(expected, params.get("oauth_signature", ""))

    def _redirect(self, location: str) -> None:
        with self.provider.lock:
            self.provider.calls.append(("/authorize", 302))
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _reply(self, path: str, status: int, body: dict[str, str]) -> None:
        with self.provider.lock:
            self.provider.calls.append((path, status))
        data = urlencode(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-www-form-urlencoded")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
