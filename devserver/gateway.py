"""A local stand-in for API Gateway's HTTP API (payload format 2.0) in front of the functions.

It routes like an HTTP API (static segments before `{param}` before `{param+}`, exact methods
before `ANY`), builds the event an HTTP API builds (notably `rawPath` percent-decoded and cut
at a decoded `?`), runs the route's Lambda authorizer first, calls the handler in-process and
turns its result into an HTTP reply.

Where API Gateway itself answers, it answers with the API's own error shape
`{"error", "message"}` rather than API Gateway's `{"message"}`: unknown route 404 `not_found`,
authorizer denial 403 `forbidden`, missing identity source 401 `unauthorized`, a failing
authorizer 500 `internal_error`, a failing handler 502 `bad_gateway`. Authorizer results are
not cached. Request bodies are never logged.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from devserver.functions import FunctionRunner
from devserver.template import ACCOUNT_ID, API_ID, REGION, HttpRoute, Template

log = logging.getLogger("devserver.gateway")
_TEXT_TYPES = re.compile(
    r"^(text/.*|application/(json|xml|javascript|x-www-form-urlencoded|x-yaml|yaml|graphql)"
    r"|application/.*\+(json|xml))$")
_BINARY_TYPES = re.compile(
    r"^(application/(octet-stream|pdf|zip|gzip|x-tar|protobuf|x-protobuf)"
    r"|image/.*|audio/.*|video/.*|font/.*|multipart/.*)$")
_STATIC, _PARAM, _GREEDY = 2, 1, 0


@dataclass
class RawRequest:
    """An HTTP request as it reached the gateway: the target is sent-as-is (still encoded)."""

    method: str
    target: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    source_ip: str = "127.0.0.1"
    protocol: str = "HTTP/1.1"


@dataclass
class RawResponse:
    """An HTTP reply: status, header pairs (repeatable) and body bytes."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """The first value of a header, case-insensitively."""
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


def error_response(status: int, code: str, message: str) -> RawResponse:
    """A reply in the API's `{"error", "message"}` shape."""
    body = json.dumps({"error": code, "message": message}).encode()
    return RawResponse(status, [("Content-Type", "application/json")], body)


def split_target(target: str) -> tuple[str, str]:
    """`(rawPath, rawQueryString)` as an HTTP API delivers them.

    The path is percent-decoded as UTF-8 and cut at a decoded `?` (so `/a%3Fb` reaches the
    function as `/a`); the query string stays exactly as sent.
    """
    if target.startswith(("http://", "https://")):
        parts = urlsplit(target)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
    raw_path, _, raw_query = target.partition("?")
    path = unquote(raw_path, encoding="utf-8", errors="replace").split("?", 1)[0]
    return (path if path.startswith("/") else f"/{path}"), raw_query


def query_parameters(raw_query: str) -> dict[str, str]:
    """Decoded query parameters; a repeated key's values are joined with commas."""
    found: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True, errors="replace"):
        found[key] = f"{found[key]},{value}" if key in found else value
    return found


class Router:
    """Matches a decoded path and method to the most specific template route."""

    def __init__(self, routes: list[HttpRoute]):
        self._routes = [(route, _segments(route.path)) for route in routes]

    def match(self, method: str, path: str) -> tuple[HttpRoute, dict[str, str]] | None:
        """The winning route and its decoded path parameters, or `None`."""
        parts = path[1:].split("/")
        best: tuple[tuple[Any, ...], HttpRoute, dict[str, str]] | None = None
        for route, segments in self._routes:
            if route.method not in (method, "ANY"):
                continue
            params = _match(segments, parts)
            if params is None:
                continue
            rank = (tuple(kind for kind, _ in segments), route.method != "ANY")
            if best is None or rank > best[0]:
                best = (rank, route, params)
        return (best[1], best[2]) if best else None


def _segments(path: str) -> list[tuple[int, str]]:
    found = []
    for segment in path[1:].split("/"):
        if segment.startswith("{") and segment.endswith("+}"):
            found.append((_GREEDY, segment[1:-2]))
        elif segment.startswith("{") and segment.endswith("}"):
            found.append((_PARAM, segment[1:-1]))
        else:
            found.append((_STATIC, segment))
    return found


def _match(segments: list[tuple[int, str]], parts: list[str]) -> dict[str, str] | None:
    params: dict[str, str] = {}
    for index, (kind, name) in enumerate(segments):
        if kind == _GREEDY:
            rest = "/".join(parts[index:])
            if not rest:
                return None
            params[name] = rest
            return params
        if index >= len(parts):
            return None
        if kind == _PARAM and parts[index]:
            params[name] = parts[index]
        elif kind != _STATIC or parts[index] != name:
            return None
    return params if len(parts) == len(segments) else None


def is_binary(content_type: str | None, body: bytes) -> bool:
    """Whether the gateway hands the body over base64-encoded rather than as text."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media and _TEXT_TYPES.match(media):
        return not _is_utf8(body)
    return bool(media and _BINARY_TYPES.match(media)) or not _is_utf8(body)


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _headers(request: RawRequest) -> tuple[dict[str, str], list[str]]:
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers:
        key = name.lower()
        if key == "cookie":
            cookies += [c.strip() for c in value.split(";") if c.strip()]
            continue
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    headers["x-forwarded-for"] = request.source_ip
    headers["x-forwarded-proto"] = "http"
    return headers, cookies


def build_event(request: RawRequest, route: HttpRoute, path_parameters: dict[str, str], *,
                domain: str) -> dict[str, Any]:
    """The payload-2.0 event an HTTP API sends to the route's function."""
    path, raw_query = split_target(request.target)
    headers, cookies = _headers(request)
    now = datetime.now(UTC)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "domainName": domain,
            "domainPrefix": domain.split(".", 1)[0].split(":", 1)[0],
            "http": {"method": request.method, "path": path, "protocol": request.protocol,
                     "sourceIp": request.source_ip, "userAgent": headers.get("user-agent", "")},
            "requestId": str(uuid.uuid4()),
            "routeKey": route.route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if raw_query:
        event["queryStringParameters"] = query_parameters(raw_query)
    if path_parameters:
        event["pathParameters"] = path_parameters
    if request.body:
        if is_binary(headers.get("content-type"), request.body):
            event["body"] = base64.b64encode(request.body).decode()
            event["isBase64Encoded"] = True
        else:
            event["body"] = request.body.decode("utf-8")
    return event


def authorizer_event(event: dict[str, Any], identity_source: list[str]) -> dict[str, Any]:
    """The payload-2.0 REQUEST event a Lambda authorizer receives for a route event."""
    http = event["requestContext"]["http"]
    route_arn = (f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{API_ID}/$default/"
                 f"{http['method']}{http['path']}")
    keys = ("routeKey", "rawPath", "rawQueryString", "cookies", "headers",
            "queryStringParameters", "requestContext", "pathParameters", "stageVariables")
    return {"version": "2.0", "type": "REQUEST", "routeArn": route_arn,
            "identitySource": identity_source, **{k: event[k] for k in keys if k in event}}


def lambda_result_response(result: Any) -> RawResponse:
    """Turn a handler's return value into an HTTP reply, as payload 2.0 does.

    A dict with `statusCode` is taken as a structured reply; anything else is JSON-encoded into
    a 200 `application/json` body (API Gateway's inference for payload 2.0).
    """
    if not (isinstance(result, dict) and "statusCode" in result):
        return RawResponse(200, [("Content-Type", "application/json")],
                           json.dumps(result).encode())
    status = int(result["statusCode"])
    headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers += [(str(name), str(v)) for v in values]
    headers += [("Set-Cookie", str(c)) for c in result.get("cookies") or []]
    body = result.get("body")
    if body is None:
        data = b""
    elif result.get("isBase64Encoded"):
        data = base64.b64decode(body)
    else:
        data = (body if isinstance(body, str) else json.dumps(body)).encode("utf-8")
    return RawResponse(status, headers, data)


class LocalApi:
    """The HTTP API of one template, callable without a socket (tests) or behind the server."""

    def __init__(self, template: Template, *, domain: str, runner: FunctionRunner | None = None):
        self.template = template
        self.domain = domain
        self.runner = runner or FunctionRunner(template)
        self.router = Router(template.routes)

    def handle(self, request: RawRequest) -> RawResponse:
        """Route, authorize and invoke; every outcome is an HTTP reply."""
        path, _ = split_target(request.target)
        matched = self.router.match(request.method.upper(), path)
        if matched is None:
            return error_response(404, "not_found", f"no route for {request.method} {path}")
        route, path_parameters = matched
        event = build_event(request, route, path_parameters, domain=self.domain)
        denied = self._authorize(route, event)
        if denied is not None:
            return denied
        try:
            result = self.runner.invoke(route.function, event)
            return lambda_result_response(result)
        except (ValueError, TypeError, binascii.Error) as exc:
            log.exception("function returned an invalid result: %s", route.function)
            return error_response(502, "bad_gateway", f"invalid function result: {exc}")
        except Exception:
            log.exception("function failed: %s", route.function)
            return error_response(502, "bad_gateway",
                                  "the function failed; its traceback is in the server log")

    def _authorize(self, route: HttpRoute, event: dict[str, Any]) -> RawResponse | None:
        authorizer = self.template.authorizer_for(route)
        if authorizer is None:
            return None
        identity = [event["headers"].get(h.lower()) for h in authorizer.identity_headers]
        query = event.get("queryStringParameters") or {}
        identity += [query.get(q) for q in authorizer.identity_query_strings]
        if any(value is None for value in identity):
            return error_response(401, "unauthorized", "the request lacks its identity source")
        try:
            request = authorizer_event(event, identity)  # type: ignore[arg-type]
            verdict = self.runner.invoke(authorizer.function, request)
        except Exception:
            log.exception("authorizer failed: %s", authorizer.function)
            return error_response(500, "internal_error", "the authorizer failed")
        allowed, context = _verdict(verdict, simple=authorizer.simple_responses)
        if not allowed:
            return error_response(403, "forbidden", "the authorizer denied the request")
        event["requestContext"]["authorizer"] = {"lambda": context}
        return None


def _verdict(result: Any, *, simple: bool) -> tuple[bool, dict[str, Any]]:
    if not isinstance(result, dict):
        return False, {}
    context = result.get("context") or {}
    if simple:
        return result.get("isAuthorized") is True, context
    statements = (result.get("policyDocument") or {}).get("Statement") or []
    effects = {str(s.get("Effect", "")).lower() for s in statements}
    return effects == {"allow"}, context


class _Handler(BaseHTTPRequestHandler):
    """Reads one HTTP request, hands it to the `LocalApi`, writes the reply."""

    protocol_version = "HTTP/1.1"
    server: GatewayServer

    def _serve(self) -> None:
        started = time.monotonic()
        request = RawRequest(method=self.command, target=self.path,
                             headers=list(self.headers.items()), body=self._read_body(),
                             source_ip=self.client_address[0], protocol=self.request_version)
        api = self.server.api
        if api is None:
            response = error_response(503, "starting", "the dev server is still starting")
        else:
            response = api.handle(request)
        self._write(response)
        log.info("%s %s %d %dms", self.command, urlsplit(self.path).path, response.status,
                 (time.monotonic() - started) * 1000)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _write(self, response: RawResponse) -> None:
        # send_response_only: the function's own Date and Server (a proxied provider's) win,
        # as behind API Gateway, instead of appearing twice.
        self.send_response_only(response.status)
        names = set()
        for name, value in response.headers:
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
                names.add(name.lower())
        if "date" not in names:
            self.send_header("Date", self.date_time_string())
        if "content-type" not in names and response.body:
            self.send_header("Content-Type", "application/json")
        body = b"" if self.command == "HEAD" or response.status in (204, 304) else response.body
        self.send_header("Content-Length", str(len(body)))
        self.send_header("apigw-requestid", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = _serve  # noqa: N815 - names stdlib dispatches to
    do_DELETE = do_HEAD = do_OPTIONS = _serve  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the stdlib access log; `_serve` logs each request without its query."""


class GatewayServer(ThreadingHTTPServer):
    """A threaded HTTP server: one thread per connection, no global request lock."""

    daemon_threads = True
    api: LocalApi | None = None

    def __init__(self, address: tuple[str, int]):
        super().__init__(address, _Handler)

    @property
    def port(self) -> int:
        """The port actually bound (useful when asked for port 0)."""
        return int(self.server_address[1])
