"""Proxy: call a provider's API as one connection, with the connection's credentials injected.

`ANY /proxy/{path}` names the connection with the `Connection-Id` and `Provider-Config-Key`
headers. Decisions a caller can rely on:

- Target: the integration's or catalog's `api_base_url`, rendered with the connection's
  `connection_config`, then the path after `/proxy` (re-encoded: HTTP APIs deliver it decoded, so
  an encoded `/` (`%2F`) inside a segment reaches the provider as a plain `/`), then the raw query
  string exactly as sent. `Base-Url-Override` replaces the base URL with any absolute http(s) URL
  (no user info, query or fragment), and credentials are still injected: the caller holds the
  secret key, which could read the same credentials from `/auth/token` anyway. Redirects are
  returned to the caller, never followed, so a credential only goes to the URL named here.
- `Connection-Id` is matched verbatim; when no such connection exists and the value holds `%XX`
  escapes, its UTF-8 percent-decoding is tried next, so ids that cannot travel in a header
  (non-ASCII, control characters) can be sent encoded. A verbatim match always wins.
- Credentials: OAuth 2.0 as `Authorization: Bearer`; an API key where the catalog says (header or
  query parameter, formatted), or `Authorization: Bearer <key>` when the catalog names no place;
  basic auth, with the catalog's placeholder password when the password is optional and blank;
  OAuth 1.0a HMAC-SHA1 with the integration's client as consumer. Injected credentials replace
  any header or query parameter of the same name the caller sent. Custom credentials inject
  nothing: the caller adds what it needs with `Terapi-Proxy-` headers.
- Headers: everything the caller sent except Terapi's own (`Authorization`, which carries the
  secret key, `Connection-Id`, `Provider-Config-Key`, `Base-Url-Override`, `Retries`), hop-by-hop
  ones and those API Gateway adds (`X-Forwarded-*`, `X-Amzn-*`). `Terapi-Proxy-<Name>` is sent as
  `<Name>` and wins over an unprefixed header of that name. The catalog's `proxy_headers` are
  added unless the caller sent the same header.
- Tokens: refreshed through the single-flight path before the call when due; after a 401, an
  OAuth 2.0 connection that can be refreshed is force-refreshed once and the call sent once more.
  A connection already known to be invalid is a 424 before anything leaves Terapi.
- Retries: `Retries: n` (default 0, capped at 5, since only the caller knows whether a call is
  safe to repeat) retries 429, 5xx and failed connections, waiting `Retry-After` (seconds or an
  HTTP date), else the catalog's rate-limit reset header on a 429, else exponential backoff with
  full jitter. A wait that would end past the function's remaining time (minus a reserve to
  answer) is not taken: the provider's response is returned as it is.
- Response: the provider's status, headers (minus hop-by-hop ones; each `Set-Cookie` kept) and
  body, byte for byte; compressed bodies are passed through still compressed, and any body that
  is not UTF-8 text goes back base64-encoded. A response too large for Lambda's 6 MB payload
  (base64 inflation included) is a 502 `upstream_response_too_large`, never a truncated body; a
  request body over 6 MB is a 413. Unreachable providers are 502, timeouts 504.
"""

from __future__ import annotations

import base64
import json
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import cache
from typing import Any
from urllib.parse import quote, unquote, unquote_plus, urlsplit

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from terapi.catalog import BASIC_PLACEHOLDER_PASSWORD, ApiKeyInjection, Provider
from terapi.errors import InvalidRequest, TerapiError
from terapi.observability import logger, metrics
from terapi.services import tokens
from terapi.services.integrations import client_secret, provider_for
from terapi.services.verification import render
from terapi.store.connections import ConnectionRecord, ConnectionStore, not_found
from terapi.store.integrations import IntegrationRecord, IntegrationStore

CONNECTION_ID_HEADER = "connection-id"
PROVIDER_CONFIG_KEY_HEADER = "provider-config-key"
BASE_URL_OVERRIDE_HEADER = "base-url-override"
RETRIES_HEADER = "retries"
FORWARD_PREFIX = "terapi-proxy-"
TERAPI_HEADERS = frozenset({"authorization", CONNECTION_ID_HEADER, PROVIDER_CONFIG_KEY_HEADER,
                            BASE_URL_OVERRIDE_HEADER, RETRIES_HEADER})
HOP_BY_HOP = frozenset({"connection", "keep-alive", "te", "trailer", "trailers",
                        "transfer-encoding", "upgrade", "host", "content-length", "expect"})
GATEWAY_PREFIXES = ("x-forwarded-", "x-amzn-")
DEFAULT_RETRIES = 0
MAX_RETRIES = 5
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 8.0
CONNECT_TIMEOUT_SECONDS = 5.0
TIME_RESERVE_SECONDS = 1.5
MIN_ATTEMPT_SECONDS = 0.5
DEFAULT_BUDGET_SECONDS = 28.0
MAX_REQUEST_BODY = 6 * 1024 * 1024
MAX_RESPONSE_PAYLOAD = 6 * 1024 * 1024 - 16 * 1024
READ_CHUNK = 64 * 1024
PATH_SAFE = "/!$&'()*+,;=:@-._~"
BEARER_KEY = ApiKeyInjection(location="header", name="authorization", format="Bearer ${api_key}")
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_BINARY_MEDIA = re.compile(r"^(image|audio|video|font)/|^application/(octet-stream|pdf|zip|gzip|"
                           r"x-gzip|x-tar|x-7z-compressed|protobuf|x-protobuf|vnd\.ms-excel|"
                           r"vnd\.openxmlformats-.*|msword)$")


class RequestTooLarge(TerapiError):
    """The request body is over what a Lambda invocation can carry."""

    status = 413
    code = "request_too_large"


class UpstreamFailure(TerapiError):
    """The provider call failed in transport; `before_send` means the request never left."""

    status = 502
    code = "upstream_unreachable"
    before_send = False


class UpstreamUnreachable(UpstreamFailure):
    """The provider could not be reached, or broke the connection mid-reply."""


class UpstreamTimeout(UpstreamFailure):
    """The provider did not answer within the time the function had left."""

    status = 504
    code = "upstream_timeout"


class UpstreamResponseTooLarge(TerapiError):
    """The provider's reply cannot fit in a Lambda response, so it is refused, not truncated."""

    status = 502
    code = "upstream_response_too_large"


@dataclass(frozen=True)
class ProxyRequest:
    """The caller's request, as the handler read it from the HTTP API event."""

    method: str
    path: str
    raw_query: str
    headers: dict[str, str]
    body: bytes = b""
    cookies: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ProxyResponse:
    """The provider's reply: `body` is `str` for UTF-8 text and `bytes` otherwise."""

    status: int
    headers: dict[str, str]
    cookies: list[str]
    body: str | bytes


@dataclass
class _Call:
    """Everything one proxied call needs, across its attempts."""

    record: ConnectionRecord
    secret: dict[str, Any]
    provider: Provider
    integration: IntegrationRecord
    method: str
    target: str
    query: str
    headers: dict[str, str]
    body: bytes
    retries: int
    deadline: float
    attempts: int = 0
    refreshed: bool = False


def forward(request: ProxyRequest,
            remaining_ms: Callable[[], int] | None = None) -> ProxyResponse:
    """Send the caller's request to the provider as the connection and return the reply as is."""
    started = time.monotonic()
    budget = remaining_ms() / 1000 if remaining_ms else DEFAULT_BUDGET_SECONDS
    call = _prepare(request, started + budget - TIME_RESERVE_SECONDS)
    _count("ProxyCalls", call.provider.name)
    response = _exchange(call)
    reply = _reply(response, _read_body(response, call.deadline))
    logger.info("proxy call finished", provider=call.provider.name, method=call.method,
                status=reply.status, attempts=call.attempts, refreshed=call.refreshed,
                duration_ms=int((time.monotonic() - started) * 1000))
    return reply


def _prepare(request: ProxyRequest, deadline: float) -> _Call:
    """Validate the request, find the connection and its provider, and get fresh credentials."""
    headers = {name.lower(): value for name, value in request.headers.items()}
    connection_id = _required_header(headers, CONNECTION_ID_HEADER, "Connection-Id")
    provider_config_key = _required_header(headers, PROVIDER_CONFIG_KEY_HEADER,
                                           "Provider-Config-Key")
    retries = parse_retries(headers.get(RETRIES_HEADER))
    if len(request.body) > MAX_REQUEST_BODY:
        raise RequestTooLarge(f"the request body is over {MAX_REQUEST_BODY} bytes")
    path = upstream_path(request.path)
    record = find_connection(provider_config_key, connection_id)
    integration = IntegrationStore().get(provider_config_key)
    provider = provider_for(integration)
    config = json.loads(record.connection_config_json)
    base = base_url(headers.get(BASE_URL_OVERRIDE_HEADER), provider, config)
    sent = forwarded_headers(headers, request.cookies, provider, config)
    record, secret = tokens.ensure_fresh(record, force=False)
    return _Call(record=record, secret=secret, provider=provider, integration=integration,
                 method=request.method.upper(), target=base.rstrip("/") + path if path else base,
                 query=request.raw_query, headers=sent, body=request.body, retries=retries,
                 deadline=deadline)


def _required_header(headers: dict[str, str], name: str, display: str) -> str:
    value = headers.get(name, "")
    if not value.strip():
        raise InvalidRequest(f"{display}: header is required")
    return value


def parse_retries(value: str | None) -> int:
    """The `Retries` header: a non-negative integer, capped at `MAX_RETRIES`; default 0."""
    if value is None or not value.strip():
        return DEFAULT_RETRIES
    if not value.strip().isdigit():
        raise InvalidRequest(f"Retries: must be an integer from 0 to {MAX_RETRIES}")
    return min(int(value.strip()), MAX_RETRIES)


def upstream_path(path: str) -> str:
    """The (gateway-decoded) path after `/proxy`, percent-encoded again for the provider."""
    if any(segment in (".", "..") for segment in path.split("/")):
        raise InvalidRequest("path: '.' and '..' segments are not allowed", code="invalid_path")
    return quote(path, safe=PATH_SAFE)


def find_connection(provider_config_key: str, connection_id: str) -> ConnectionRecord:
    """The connection named verbatim, else by its percent-decoded id; 404 when neither exists."""
    store = ConnectionStore()
    record = store.find(provider_config_key, connection_id)
    if record is None and _ESCAPE.search(connection_id):
        try:
            decoded = unquote(connection_id, errors="strict")
        except UnicodeDecodeError:
            decoded = connection_id
        if decoded != connection_id:
            record = store.find(provider_config_key, decoded)
    if record is None:
        raise not_found(provider_config_key, connection_id)
    return record


def base_url(override: str | None, provider: Provider, config: dict[str, str]) -> str:
    """The `Base-Url-Override` header when sent and valid, else the provider's rendered base URL."""
    if override is not None:
        return checked_override(override.strip())
    if not provider.api_base_url:
        raise InvalidRequest(f"provider '{provider.name}' has no API base URL; send the "
                             "Base-Url-Override header", code="missing_base_url")
    return render(provider.api_base_url, config, "api_base_url")


def checked_override(url: str) -> str:
    """Accept an absolute http(s) URL with a host and no user info, query or fragment."""
    parts = urlsplit(url)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if (parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc
            or parts.query or parts.fragment or "?" in url or "#" in url or not port_ok
            or any(c.isspace() or ord(c) < 32 for c in url)):
        raise InvalidRequest("Base-Url-Override: must be an absolute http(s) URL without user "
                             "info, query or fragment", code="invalid_base_url")
    return url


def forwarded_headers(headers: dict[str, str], cookies: list[str], provider: Provider,
                      config: dict[str, str]) -> dict[str, str]:
    """The caller's headers as the provider should see them (lower-case names), see the module."""
    sent: dict[str, str] = {}
    prefixed: dict[str, str] = {}
    for name, value in headers.items():
        if name.startswith(FORWARD_PREFIX):
            target = name[len(FORWARD_PREFIX):]
            if target and not is_hop_by_hop(target):
                prefixed[target] = value
        elif name not in TERAPI_HEADERS and not is_hop_by_hop(name) and not name.startswith(
                GATEWAY_PREFIXES):
            sent[name] = value
    sent.update(prefixed)
    if cookies and "cookie" not in sent:
        sent["cookie"] = "; ".join(cookies)
    for name, template in provider.proxy_headers.items():
        if name.lower() not in sent:
            sent[name.lower()] = render(template, config, f"proxy_headers.{name}")
    return sent


def is_hop_by_hop(name: str) -> bool:
    """Headers that describe one connection, not the message, and never cross a proxy."""
    return name in HOP_BY_HOP or name.startswith("proxy-")


def _exchange(call: _Call) -> Any:
    """Send until the reply is final: one refresh after a 401, retries on 429/5xx in budget."""
    retried = 0
    while True:
        try:
            response = _send(call)
        except UpstreamFailure as exc:
            if not exc.before_send or retried >= call.retries:
                raise
            wait = _backoff(retried)
            if time.monotonic() + wait + MIN_ATTEMPT_SECONDS > call.deadline:
                raise
            retried += 1
            _note_retry(call, None, wait)
            continue
        if response.status == 401 and not call.refreshed and _can_refresh(call):
            _discard(response)
            call.refreshed = True
            call.record, call.secret = tokens.refresh(call.record, force=True)
            continue
        if not _retryable(response.status) or retried >= call.retries:
            return response
        wait = wait_seconds(response.status, response.headers, call.provider, retried)
        if time.monotonic() + wait + MIN_ATTEMPT_SECONDS > call.deadline:
            return response
        _discard(response)
        retried += 1
        _note_retry(call, response.status, wait)


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


def _can_refresh(call: _Call) -> bool:
    """Only OAuth 2.0 tokens that can be renewed: a failed renewal would mark others invalid."""
    return call.secret.get("type") == "oauth2" and (
        bool(call.secret.get("refresh_token")) or call.provider.auth_mode == "oauth2_cc")


def _note_retry(call: _Call, status: int | None, wait: float) -> None:
    logger.info("proxy call retried", provider=call.provider.name, status=status,
                wait_ms=int(wait * 1000))
    _count("ProxyRetries", call.provider.name)
    time.sleep(wait)


def wait_seconds(status: int, headers: Any, provider: Provider, retried: int) -> float:
    """How long to wait before retry `retried + 1`: what the provider asked for, else backoff."""
    hint = retry_after_seconds(headers.get("retry-after"))
    if hint is None and status == 429 and provider.rate_limit_reset_header:
        hint = rate_limit_reset_seconds(headers.get(provider.rate_limit_reset_header),
                                        provider.rate_limit_reset_kind)
    return max(0.0, hint) if hint is not None else _backoff(retried)


def _backoff(retried: int) -> float:
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** retried)
    return random.uniform(0, ceiling)  # noqa: S311 - jitter, not security


def retry_after_seconds(value: str | None) -> float | None:
    """`Retry-After` as seconds from now: delay-seconds or an HTTP date; None if unusable."""
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def rate_limit_reset_seconds(value: str | None, kind: str | None) -> float | None:
    """A catalog rate-limit reset header as seconds from now (epoch or delta seconds)."""
    try:
        number = float((value or "").strip())
    except ValueError:
        return None
    seconds = number - time.time() if kind == "epoch_seconds" else number
    return max(0.0, seconds)


@cache
def _pool() -> Any:
    import urllib3

    return urllib3.PoolManager(retries=False, maxsize=10)


def _send(call: _Call) -> Any:
    """One attempt: inject credentials, send, return the unread response (or a mapped error)."""
    import urllib3

    left = call.deadline - time.monotonic()
    if left < MIN_ATTEMPT_SECONDS:
        raise UpstreamTimeout("no time was left to call the provider")
    url, headers = authorize(call)
    call.attempts += 1
    timeout = urllib3.Timeout(connect=min(CONNECT_TIMEOUT_SECONDS, left), read=left)
    try:
        response = _pool().request(call.method, url, body=call.body or None, headers=headers,
                                   redirect=False, preload_content=False, decode_content=False,
                                   timeout=timeout)
    except urllib3.exceptions.HTTPError as exc:
        raise _transport_error(call, exc) from None
    except ValueError:
        # http.client refuses header values outside Latin-1 or with line breaks; its message
        # quotes the value, which may be a credential, so it is dropped.
        raise InvalidRequest("a header value cannot be sent over HTTP (line break or non-Latin-1 "
                             "character)", code="invalid_header") from None
    _count("ProxyUpstreamResponses", call.provider.name, status_class=f"{response.status // 100}xx")
    return response


def _transport_error(call: _Call, exc: Exception) -> TerapiError:
    """Map a urllib3 failure; its text can hold the URL (and a query-string key): log the type."""
    import urllib3

    logger.warning("provider call failed", provider=call.provider.name,
                   error_type=type(exc).__name__)
    _count("ProxyUpstreamFailures", call.provider.name)
    name, kind = call.provider.display_name, type(exc).__name__
    error: UpstreamFailure
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        error = UpstreamUnreachable(f"{name} could not be reached ({kind})")
    elif isinstance(exc, urllib3.exceptions.TimeoutError):
        error = UpstreamTimeout(f"{name} did not answer in time ({kind})")
    else:
        error = UpstreamUnreachable(f"the connection to {name} failed ({kind})")
    error.before_send = isinstance(exc, urllib3.exceptions.ConnectTimeoutError)
    return error


def authorize(call: _Call) -> tuple[str, dict[str, str]]:
    """The URL and headers of one attempt, with the connection's credentials injected."""
    headers = dict(call.headers)
    query = call.query
    secret = call.secret
    kind = secret.get("type", call.record.credentials_type)
    if kind == "oauth2":
        headers["authorization"] = f"Bearer {secret['access_token']}"
    elif kind == "api_key":
        injection = call.provider.api_key or BEARER_KEY
        value = injection.format.replace("${api_key}", secret["api_key"])
        if injection.location == "header":
            headers[injection.name.lower()] = value
        else:
            query = with_query_param(query, injection.name, value)
    elif kind == "basic":
        headers["authorization"] = basic_authorization(secret, call.provider)
    elif kind == "oauth1":
        headers["authorization"] = _oauth1_authorization(call, _url(call.target, query),
                                                         headers.get("content-type"))
    return _url(call.target, query), headers


def _url(target: str, query: str) -> str:
    return f"{target}?{query}" if query else target


def with_query_param(raw_query: str, name: str, value: str) -> str:
    """The query string without any `name` parameter the caller sent, plus `name=value`."""
    kept = [part for part in raw_query.split("&")
            if part and unquote_plus(part.split("=", 1)[0]) != name]
    kept.append(f"{quote(name, safe='')}={quote(value, safe='')}")
    return "&".join(kept)


def basic_authorization(secret: dict[str, Any], provider: Provider) -> str:
    """HTTP basic auth; a blank optional password becomes the catalog's placeholder."""
    password = secret.get("password") or ""
    if not password and provider.basic is not None and provider.basic.password_optional:
        password = BASIC_PLACEHOLDER_PASSWORD
    pair = f"{secret['username']}:{password}".encode()
    return "Basic " + base64.b64encode(pair).decode()


def _oauth1_authorization(call: _Call, url: str, content_type: str | None) -> str:
    from terapi.oauth1 import OAuth1Keys, authorization_header

    consumer_secret = client_secret(call.integration)
    if not call.integration.oauth_client_id or not consumer_secret:
        raise InvalidRequest(f"integration '{call.integration.provider_config_key}' needs an "
                             "oauth_client_id and oauth_client_secret to sign OAuth 1.0a "
                             "requests", code="integration_not_configured")
    keys = OAuth1Keys(call.integration.oauth_client_id, consumer_secret,
                      call.secret["oauth_token"], call.secret["oauth_token_secret"])
    try:
        return authorization_header(keys, call.method, url, content_type, call.body)
    except ValueError as exc:
        raise InvalidRequest(f"the request cannot be signed with OAuth 1.0a: {exc}",
                             code="unsignable_request") from None


def _discard(response: Any) -> None:
    """Let go of a reply we will not return: reuse the connection only when little is unread."""
    import urllib3

    length = response.headers.get("content-length", "")
    try:
        if length.isdigit() and int(length) <= READ_CHUNK:
            response.drain_conn()
        else:
            response.close()
    except urllib3.exceptions.HTTPError:
        response.close()
    response.release_conn()


def _read_body(response: Any, deadline: float) -> bytes:
    """Read the body as sent (still compressed), refusing it once it passes the payload limit."""
    import urllib3

    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_RESPONSE_PAYLOAD:
        response.close()
        raise _too_large(f"{length} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        while chunk := response.read(READ_CHUNK, decode_content=False):
            size += len(chunk)
            if size > MAX_RESPONSE_PAYLOAD:
                response.close()
                raise _too_large(f"over {MAX_RESPONSE_PAYLOAD} bytes")
            if time.monotonic() > deadline:
                response.close()
                raise UpstreamTimeout("the provider's response did not arrive in time")
            chunks.append(chunk)
    except urllib3.exceptions.TimeoutError:
        raise UpstreamTimeout("the provider's response did not arrive in time") from None
    except urllib3.exceptions.HTTPError as exc:
        raise UpstreamUnreachable(f"the provider's response broke off ({type(exc).__name__})") \
            from None
    response.release_conn()
    return b"".join(chunks)


def _too_large(size: str) -> UpstreamResponseTooLarge:
    return UpstreamResponseTooLarge(
        f"the provider's response ({size}) does not fit in the 6 MB Lambda response payload "
        "(base64 for binary bodies included); request less, such as a smaller page")


def _reply(response: Any, body: bytes) -> ProxyResponse:
    """The provider's reply in the Lambda response's terms; 502 when it cannot fit."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name in list(response.headers):
        lower = name.lower()
        values = response.headers.getlist(name)
        if lower == "set-cookie":
            cookies += values
        elif not is_hop_by_hop(lower):
            headers[lower] = ", ".join(values)
    text = _as_text(headers, body)
    payload: str | bytes = text if text is not None else body
    encoded = len(json.dumps(text)) if text is not None else 4 * ((len(body) + 2) // 3)
    envelope = len(json.dumps({"statusCode": response.status, "headers": headers,
                               "cookies": cookies, "body": "", "isBase64Encoded": False}))
    if encoded + envelope > MAX_RESPONSE_PAYLOAD:
        raise _too_large(f"{len(body)} bytes, {encoded} once encoded")
    return ProxyResponse(response.status, headers, cookies, payload)


def _as_text(headers: dict[str, str], body: bytes) -> str | None:
    """The body as text when it can travel as such; None means base64."""
    if headers.get("content-encoding", "identity").strip().lower() not in ("", "identity"):
        return None
    media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if _BINARY_MEDIA.match(media):
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _count(name: str, provider: str, **dimensions: str) -> None:
    """One data point with its own dimensions, so they never leak onto other metrics."""
    with single_metric(name=name, unit=MetricUnit.Count, value=1,
                       namespace=metrics.namespace) as metric:
        metric.add_dimension(name="provider", value=provider)
        for key, value in dimensions.items():
            metric.add_dimension(name=key, value=value)
