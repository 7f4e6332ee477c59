"""The proxy: credentials injected each provider's way, forwarding rules, refresh, retries, limits.

Calls go through the local gateway (authorizer, HTTP API v2 event, handler) to a real HTTP server
on loopback that echoes what it receives (tests/support/echo_server.py). Catalog providers are
pointed at that server by patching their `api_base_url`; nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from types import SimpleNamespace
from typing import Any

import pytest
from oauthlib.oauth1.rfc5849 import signature, utils

from devserver.functions import REPO_ROOT
from devserver.gateway import RawRequest, RawResponse
from tests.conftest import SECRET_KEY, ApiClient, LocalAws
from tests.support.echo_server import EchoServer, Reply

KEY = "inhouse"
CONNECTION = "user-1"


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    with EchoServer() as server:
        yield server


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    from terapi.services import proxy

    monkeypatch.setattr(proxy, "BACKOFF_BASE_SECONDS", 0.01)


@pytest.fixture
def oauth2(api: ApiClient, echo: EchoServer) -> str:
    """A generic OAuth 2.0 integration whose API and token endpoint are the echo server."""
    status, body, _ = api.request("POST", "/integration", json={
        "provider_config_key": KEY, "provider": "oauth2", "oauth_client_id": "client-1",
        "oauth_client_secret": "client-secret", "authorization_url": f"{echo.url}/authorize",
        "token_url": f"{echo.url}/oauth/token", "api_base_url": f"{echo.url}/api"})
    assert status == 200, body
    return KEY


def loopback_provider(monkeypatch: pytest.MonkeyPatch, echo: EchoServer, name: str,
                      **changes: Any) -> None:
    """Point a catalog provider at the echo server (catalog data itself must stay https)."""
    from terapi import catalog

    real = catalog.get_provider

    def patched(wanted: str) -> Any:
        found = real(wanted)
        if wanted != name or found is None:
            return found
        return found.model_copy(update={"api_base_url": f"{echo.url}/api", "verification": None,
                                        **changes})

    monkeypatch.setattr(catalog, "get_provider", patched)


def integrate(api: ApiClient, provider: str, **fields: Any) -> None:
    status, body, _ = api.request("POST", "/integration", json={
        "provider_config_key": KEY, "provider": provider, **fields})
    assert status == 200, body


def connect(api: ApiClient, credentials: dict[str, Any], connection_id: str = CONNECTION,
            **fields: Any) -> None:
    status, body, _ = api.request("POST", "/connection", json={
        "connection_id": connection_id, "provider_config_key": KEY,
        "credentials": credentials, **fields})
    assert status == 200, body


def call(api: ApiClient, method: str, path: str, *, headers: dict[str, str] | None = None,
         body: bytes = b"", connection: str = CONNECTION) -> RawResponse:
    """One proxied request through the gateway; the raw reply keeps binary bodies intact."""
    sent = {"Authorization": f"Bearer {SECRET_KEY}", "Connection-Id": connection,
            "Provider-Config-Key": KEY, **(headers or {})}
    return api.local_api.handle(RawRequest(method=method, target=f"/proxy{path}",
                                           headers=list(sent.items()), body=body))


def error_of(reply: RawResponse) -> str:
    return json.loads(reply.body)["error"]


def test_bearer_token_is_injected_and_method_path_query_body_are_forwarded(
        api: ApiClient, echo: EchoServer, oauth2: str) -> None:
    connect(api, {"access_token": "token-1"})

    reply = call(api, "POST", "/repos/acme/back%20end/issues?state=open&label=a%2Cb&label=c",
                 headers={"Content-Type": "application/json"}, body=b'{"title": "Bug"}')

    assert reply.status == 200
    [received] = echo.calls()
    assert received.method == "POST"
    assert received.path == "/api/repos/acme/back%20end/issues"
    assert received.query == "state=open&label=a%2Cb&label=c"
    assert received.body == b'{"title": "Bug"}'
    assert received.header("authorization") == "Bearer token-1"
    assert received.header("content-type") == "application/json"
    assert json.loads(reply.body)["path"] == "/api/repos/acme/back%20end/issues"


def test_forwarding_rules_strip_prefix_and_never_forward_the_secret_key(
        api: ApiClient, echo: EchoServer, oauth2: str) -> None:
    connect(api, {"access_token": "token-1"})

    call(api, "GET", "/me", headers={
        "Terapi-Proxy-X-Trace": "abc", "X-Plain": "1", "Accept": "application/json",
        "Terapi-Proxy-Connection-Id": "provider-side-id", "Terapi-Proxy-Host": "evil.example",
        "Keep-Alive": "timeout=5", "TE": "trailers", "Upgrade": "h2c", "Trailer": "X-Sum",
        "Proxy-Authorization": "Basic eDp5", "Retries": "0", "Cookie": "a=1; b=2"})

    [received] = echo.calls()
    assert received.header("x-trace") == "abc"
    assert received.header("x-plain") == "1"
    assert received.header("accept") == "application/json"
    assert received.header("connection-id") == "provider-side-id"
    assert received.header("cookie") == "a=1; b=2"
    assert received.header("host") == echo.url.removeprefix("http://")
    assert received.header("authorization") == "Bearer token-1"
    names = received.header_names()
    for dropped in ("keep-alive", "te", "upgrade", "trailer", "proxy-authorization", "retries",
                    "provider-config-key", "terapi-proxy-x-trace", "x-forwarded-for",
                    "x-forwarded-proto"):
        assert dropped not in names
    assert all(SECRET_KEY not in value for _, value in received.headers)


def test_catalog_proxy_headers_are_added_unless_the_caller_sent_them(
        api: ApiClient, echo: EchoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    loopback_provider(monkeypatch, echo, "github")
    integrate(api, "github", oauth_client_id="id", oauth_client_secret="secret")
    connect(api, {"access_token": "gho_1"})

    call(api, "GET", "/user")
    call(api, "GET", "/user", headers={"Accept": "text/plain"})

    first, second = echo.calls()
    assert first.header("accept") == "application/vnd.github+json"
    assert first.header("x-github-api-version") == "2022-11-28"
    assert second.header("accept") == "text/plain"
    assert second.header("x-github-api-version") == "2022-11-28"


def test_api_key_goes_in_the_catalog_header(api: ApiClient, echo: EchoServer,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    loopback_provider(monkeypatch, echo, "anthropic")
    integrate(api, "anthropic")
    connect(api, {"api_key": "sk-ant-1"})

    reply = call(api, "POST", "/messages", headers={"x-api-key": "caller-guess"}, body=b"{}")

    assert reply.status == 200
    [received] = echo.calls()
    assert received.header("x-api-key") == "sk-ant-1"
    assert received.header("anthropic-version") == "2023-06-01"
    assert received.header("authorization") is None


def test_api_key_goes_in_the_query_and_replaces_the_callers_parameter(
        api: ApiClient, echo: EchoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from terapi.catalog import ApiKeyInjection

    loopback_provider(monkeypatch, echo, "anthropic", proxy_headers={},
                      api_key=ApiKeyInjection(location="query", name="api_key"))
    integrate(api, "anthropic")
    connect(api, {"api_key": "k&y=1"})

    call(api, "GET", "/items?api_key=forged&page=2")

    [received] = echo.calls()
    assert received.query == "page=2&api_key=k%26y%3D1"
    assert received.header("x-api-key") is None


def test_basic_credentials_and_the_placeholder_for_an_optional_password(
        api: ApiClient, echo: EchoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    loopback_provider(monkeypatch, echo, "bamboohr")
    integrate(api, "bamboohr")
    connect(api, {"username": "api-key-1"}, connection_config={"subdomain": "acme"})
    connect(api, {"username": "api-key-2", "password": "pw"}, "user-2",
            connection_config={"subdomain": "acme"})

    call(api, "GET", "/employees/directory")
    call(api, "GET", "/employees/directory", connection="user-2")

    first, second = echo.calls()
    assert first.header("authorization") == "Basic " + base64.b64encode(b"api-key-1:x").decode()
    assert second.header("authorization") == "Basic " + base64.b64encode(b"api-key-2:pw").decode()


def test_oauth1_requests_carry_a_valid_hmac_sha1_signature(
        api: ApiClient, echo: EchoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    loopback_provider(monkeypatch, echo, "trello")
    integrate(api, "trello", oauth_client_id="consumer-key", oauth_client_secret="consumer-sec")
    connect(api, {"oauth_token": "token-key", "oauth_token_secret": "token-sec"})

    reply = call(api, "POST", "/cards?idList=42&pos=top",
                 headers={"Content-Type": "application/x-www-form-urlencoded"},
                 body=b"name=New%20card&desc=a+b")

    assert reply.status == 200
    [received] = echo.calls()
    header = received.header("authorization") or ""
    oauth = {k: utils.unescape(v) for k, v in utils.parse_authorization_header(header)}
    assert oauth["oauth_consumer_key"] == "consumer-key"
    assert oauth["oauth_token"] == "token-key"
    assert oauth["oauth_signature_method"] == "HMAC-SHA1"
    uri = f"{echo.url}{received.path}?{received.query}"
    params = signature.collect_parameters(uri_query=received.query,
                                          body=received.body.decode(),
                                          headers={"Authorization": header})
    base = signature.signature_base_string("POST", signature.base_string_uri(uri),
                                           signature.normalize_parameters(params))
    keys = SimpleNamespace(client_secret="consumer-sec", resource_owner_secret="token-sec")
    assert oauth["oauth_signature"] == signature.sign_hmac_sha1_with_client(base, keys)
    assert received.body == b"name=New%20card&desc=a+b"


def test_a_401_refreshes_once_then_the_call_succeeds(api: ApiClient, echo: EchoServer,
                                                      oauth2: str) -> None:
    connect(api, {"access_token": "stale", "refresh_token": "refresh-0"})
    echo.script(Reply(status=401, body=b'{"message": "Bad credentials"}'))

    reply = call(api, "GET", "/me")

    assert reply.status == 200
    first, second = echo.calls()
    assert first.header("authorization") == "Bearer stale"
    assert second.header("authorization") == "Bearer fresh-token-1"
    assert [r["refresh_token"] for r in echo.token_requests] == ["refresh-0"]


def test_a_second_401_is_returned_without_another_refresh(api: ApiClient, echo: EchoServer,
                                                          oauth2: str) -> None:
    connect(api, {"access_token": "stale", "refresh_token": "refresh-0"})
    echo.script(Reply(status=401, body=b"no"), Reply(status=401, body=b"still no"))

    reply = call(api, "GET", "/me")

    assert (reply.status, reply.body) == (401, b"still no")
    assert len(echo.calls()) == 2
    assert len(echo.token_requests) == 1


def test_a_401_without_a_refresh_token_is_returned_and_the_connection_stays_valid(
        api: ApiClient, echo: EchoServer, oauth2: str) -> None:
    connect(api, {"access_token": "only"})
    echo.script(Reply(status=401, body=b"denied"))

    reply = call(api, "GET", "/me")

    assert (reply.status, reply.body) == (401, b"denied")
    assert echo.token_requests == []
    status, body, _ = api.request("GET", f"/connection/{CONNECTION}?provider_config_key={KEY}")
    assert status == 200 and body["credentials"].get("status", "valid") == "valid"


def test_an_expired_token_is_refreshed_before_the_call(api: ApiClient, echo: EchoServer,
                                                       oauth2: str) -> None:
    connect(api, {"access_token": "old", "refresh_token": "refresh-0",
                  "expires_at": "2020-01-01T00:00:00Z"})

    reply = call(api, "GET", "/me")

    assert reply.status == 200
    [received] = echo.calls()
    assert received.header("authorization") == "Bearer fresh-token-1"


def test_429_waits_for_retry_after_then_succeeds(api: ApiClient, echo: EchoServer,
                                                 oauth2: str) -> None:
    connect(api, {"access_token": "token-1"})
    echo.script(Reply(status=429, headers=[("Retry-After", "1")], body=b"slow down"))

    started = time.monotonic()
    reply = call(api, "GET", "/me", headers={"Retries": "2"})

    assert reply.status == 200
    assert time.monotonic() - started >= 1.0
    assert len(echo.calls()) == 2


def test_429_uses_the_catalog_rate_limit_reset_header(api: ApiClient, echo: EchoServer,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    loopback_provider(monkeypatch, echo, "discord")
    integrate(api, "discord", oauth_client_id="id", oauth_client_secret="secret")
    connect(api, {"access_token": "token-1"})
    echo.script(Reply(status=429, headers=[("X-RateLimit-Reset-After", "0.4")]))

    started = time.monotonic()
    reply = call(api, "GET", "/users/@me", headers={"Retries": "1"})

    assert reply.status == 200
    assert time.monotonic() - started >= 0.4


def test_a_wait_past_the_deadline_returns_the_429_as_is(api: ApiClient, echo: EchoServer,
                                                        oauth2: str) -> None:
    connect(api, {"access_token": "token-1"})
    echo.script(Reply(status=429, headers=[("Retry-After", "120")], body=b"come back later"))

    started = time.monotonic()
    reply = call(api, "GET", "/me", headers={"Retries": "5"})

    assert (reply.status, reply.body) == (429, b"come back later")
    assert reply.header("retry-after") == "120"
    assert time.monotonic() - started < 5
    assert len(echo.calls()) == 1


def test_5xx_is_retried_with_backoff_then_succeeds(api: ApiClient, echo: EchoServer,
                                                   oauth2: str) -> None:
    connect(api, {"access_token": "token-1"})
    echo.script(Reply(status=503), Reply(status=502), Reply(status=500))

    reply = call(api, "GET", "/me", headers={"Retries": "3"})

    assert reply.status == 200
    assert len(echo.calls()) == 4


def test_retries_default_to_none_and_the_last_5xx_is_returned(api: ApiClient, echo: EchoServer,
                                                              oauth2: str) -> None:
    connect(api, {"access_token": "token-1"})
    echo.script(Reply(status=500, body=b"boom"), Reply(status=500, body=b"boom 2"),
                Reply(status=500, body=b"boom 3"))

    assert call(api, "POST", "/charge", body=b"{}").status == 500
    assert len(echo.calls()) == 1
    reply = call(api, "POST", "/charge", body=b"{}", headers={"Retries": "1"})
    assert (reply.status, reply.body) == (500, b"boom 3")
    assert len(echo.calls()) == 3


def test_binary_bodies_round_trip_byte_for_byte(api: ApiClient, echo: EchoServer,
                                                oauth2: str) -> None:
    connect(api, {"access_token": "token-1"})
    payload = bytes(range(256)) * 64
    echo.script(Reply(mirror=True))

    reply = call(api, "PUT", "/files/a.bin", body=payload,
                 headers={"Content-Type": "application/octet-stream"})

    assert reply.status == 200
    assert echo.calls()[0].body == payload
    assert reply.body == payload
    assert reply.header("content-type") == "application/octet-stream"


def test_response_headers_keep_every_cookie_and_drop_hop_by_hop(
        api: ApiClient, echo: EchoServer, oauth2: str) -> None:
    connect(api, {"access_token": "token-1"})
    echo.script(Reply(status=201, body=b"made", headers=[
        ("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2; HttpOnly"), ("Link", "<x>; rel=next"),
        ("Link", "<y>; rel=last"), ("Keep-Alive", "timeout=5"), ("Content-Type", "text/plain")]))

    reply = call(api, "POST", "/things", body=b"{}")

    assert (reply.status, reply.body) == (201, b"made")
    cookies = [v for k, v in reply.headers if k.lower() == "set-cookie"]
    assert cookies == ["a=1; Path=/", "b=2; HttpOnly"]
    assert reply.header("link") == "<x>; rel=next, <y>; rel=last"
    assert reply.header("keep-alive") is None
    assert reply.header("content-type") == "text/plain"


def test_a_response_over_the_lambda_limit_is_a_502_not_a_truncated_body(
        api: ApiClient, echo: EchoServer, oauth2: str) -> None:
    connect(api, {"access_token": "token-1"})
    echo.script(Reply(body=b"x" * (7 * 1024 * 1024)),
                Reply(body=b"\xff" * (5 * 1024 * 1024),
                      headers=[("Content-Type", "application/octet-stream")]),
                Reply(body=b"\xfe" * (3 * 1024 * 1024),
                      headers=[("Content-Type", "application/octet-stream")]))

    too_large = call(api, "GET", "/export")
    inflated = call(api, "GET", "/export.bin")
    fits = call(api, "GET", "/small.bin")

    assert too_large.status == 502 and error_of(too_large) == "upstream_response_too_large"
    assert inflated.status == 502 and error_of(inflated) == "upstream_response_too_large"
    assert fits.status == 200 and fits.body == b"\xfe" * (3 * 1024 * 1024)


def test_a_request_body_over_the_limit_is_a_413_and_nothing_is_sent(
        api: ApiClient, echo: EchoServer, oauth2: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from terapi.services import proxy

    monkeypatch.setattr(proxy, "MAX_REQUEST_BODY", 1024)
    connect(api, {"access_token": "token-1"})

    reply = call(api, "POST", "/upload", body=b"y" * 2048)

    assert reply.status == 413 and error_of(reply) == "request_too_large"
    assert echo.calls() == []


def test_body_less_methods_delete_and_head(api: ApiClient, echo: EchoServer,
                                           oauth2: str) -> None:
    connect(api, {"access_token": "token-1"})
    echo.script(Reply(status=204, body=b""))

    deleted = call(api, "DELETE", "/things/7")
    head = call(api, "HEAD", "/things/8")

    assert deleted.status == 204 and deleted.body == b""
    assert (head.status, head.body) == (200, b"")
    first, second = echo.calls()
    assert (first.method, first.body, first.header("content-length")) == ("DELETE", b"", None)
    assert (second.method, second.path) == ("HEAD", "/api/things/8")


def test_invalid_credentials_are_a_424_before_any_call_leaves(
        api: ApiClient, aws: LocalAws, echo: EchoServer, oauth2: str) -> None:
    from terapi.aws import client
    from terapi.settings import get_settings
    from terapi.store.connections import ConnectionStore

    connect(api, {"access_token": "revoked", "refresh_token": "refresh-0"})
    client("dynamodb").update_item(
        TableName=get_settings().table_name, Key=ConnectionStore.key(KEY, CONNECTION),
        UpdateExpression="SET credentials_status = :s, credentials_error = :e",
        ExpressionAttributeValues={":s": {"S": "invalid"}, ":e": {"S": "invalid_grant"}})

    reply = call(api, "GET", "/me")

    assert reply.status == 424
    assert error_of(reply) == "credentials_invalid"
    assert echo.calls() == [] and echo.token_requests == []


def test_missing_headers_unknown_connections_and_bad_input_are_4xx(
        api: ApiClient, echo: EchoServer, oauth2: str) -> None:
    connect(api, {"access_token": "token-1"})
    bare = RawRequest("GET", "/proxy/me", [("Authorization", f"Bearer {SECRET_KEY}"),
                                           ("Provider-Config-Key", KEY)])

    missing = api.local_api.handle(bare)
    unknown = call(api, "GET", "/me", connection="nobody")
    retries = call(api, "GET", "/me", headers={"Retries": "many"})
    dots = call(api, "GET", "/a/../admin")
    overrides = [call(api, "GET", "/me", headers={"Base-Url-Override": url})
                 for url in ("ftp://example.com", "http://user:pw@example.com", "/relative",
                             "https://example.com/?q=1", "https://")]

    assert missing.status == 400 and "Connection-Id" in json.loads(missing.body)["message"]
    assert unknown.status == 404 and error_of(unknown) == "unknown_connection"
    assert retries.status == 400
    assert dots.status == 400 and error_of(dots) == "invalid_path"
    assert [(r.status, error_of(r)) for r in overrides] == [(400, "invalid_base_url")] * 5
    assert echo.calls() == []


def test_the_secret_key_is_required(api: ApiClient, echo: EchoServer, oauth2: str) -> None:
    connect(api, {"access_token": "token-1"})
    request = RawRequest("GET", "/proxy/me", [("Connection-Id", CONNECTION),
                                              ("Provider-Config-Key", KEY),
                                              ("Authorization", "Bearer wrong")])

    reply = api.local_api.handle(request)

    assert reply.status == 401
    assert echo.calls() == []


def test_base_url_override_still_injects_credentials(api: ApiClient, oauth2: str) -> None:
    connect(api, {"access_token": "token-1"})
    with EchoServer() as other:
        reply = call(api, "GET", "/v2/me?x=1", headers={"Base-Url-Override": f"{other.url}/eu/"})

        assert reply.status == 200
        [received] = other.calls()
        assert (received.path, received.query) == ("/eu/v2/me", "x=1")
        assert received.header("authorization") == "Bearer token-1"
        assert received.header("base-url-override") is None


def test_a_percent_encoded_connection_id_is_accepted(api: ApiClient, echo: EchoServer,
                                                      oauth2: str) -> None:
    connect(api, {"access_token": "token-u"}, "ü ser/1")

    reply = call(api, "GET", "/me", connection="%C3%BC%20ser%2F1")

    assert reply.status == 200
    assert echo.calls()[0].header("authorization") == "Bearer token-u"


def test_an_unreachable_provider_is_a_502_and_a_slow_one_a_504(
        api: ApiClient, echo: EchoServer, oauth2: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import devserver.functions

    connect(api, {"access_token": "token-1"})
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    unreachable = call(api, "GET", "/me", headers={
        "Base-Url-Override": f"http://127.0.0.1:{closed_port}", "Retries": "1"})

    class ShortLambda(devserver.functions.LambdaContext):
        def __init__(self, name: str, **_: Any) -> None:
            super().__init__(name, timeout_seconds=3)

    monkeypatch.setattr(devserver.functions, "LambdaContext", ShortLambda)
    echo.script(Reply(delay=8))
    started = time.monotonic()
    slow = call(api, "GET", "/me")

    assert unreachable.status == 502 and error_of(unreachable) == "upstream_unreachable"
    assert slow.status == 504 and error_of(slow) == "upstream_timeout"
    assert time.monotonic() - started < 6


def test_metrics_count_calls_retries_and_status_classes_per_provider(
        api: ApiClient, echo: EchoServer, oauth2: str, capsys: pytest.CaptureFixture[str]) -> None:
    connect(api, {"access_token": "token-1"})
    echo.script(Reply(status=503))
    capsys.readouterr()

    call(api, "GET", "/me", headers={"Retries": "1"})

    points = []
    for line in capsys.readouterr().out.splitlines():
        if '"_aws"' in line:
            blob = json.loads(line)
            for metric in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                points.append((metric["Name"], blob.get("provider"), blob.get("status_class")))
    assert ("ProxyRequests", None, None) in points
    assert ("ProxyCalls", "oauth2", None) in points
    assert ("ProxyRetries", "oauth2", None) in points
    assert ("ProxyUpstreamResponses", "oauth2", "5xx") in points
    assert ("ProxyUpstreamResponses", "oauth2", "2xx") in points


def test_retry_after_and_reset_headers_parse_both_forms() -> None:
    from terapi.services.proxy import rate_limit_reset_seconds, retry_after_seconds

    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert retry_after_seconds("7") == 7.0
    assert 25 <= (retry_after_seconds(later) or 0) <= 30
    assert retry_after_seconds("soon") is None
    assert rate_limit_reset_seconds(str(int(time.time()) + 10), "epoch_seconds") >= 8
    assert rate_limit_reset_seconds("1.5", "delta_seconds") == 1.5
    assert rate_limit_reset_seconds("", "delta_seconds") is None


@pytest.mark.parametrize("name", ["proxy-get", "proxy-post"])
def test_the_sample_events_invoke_the_proxy(api: ApiClient, echo: EchoServer,
                                            monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    loopback_provider(monkeypatch, echo, "github")
    status, body, _ = api.request("POST", "/integration", json={
        "provider_config_key": "github", "provider": "github", "oauth_client_id": "id",
        "oauth_client_secret": "secret"})
    assert status == 200, body
    status, body, _ = api.request("POST", "/connection", json={
        "connection_id": "user-1", "provider_config_key": "github",
        "credentials": {"access_token": "gho_1"}})
    assert status == 200, body
    event = json.loads((REPO_ROOT / "events" / f"{name}.json").read_text())

    result = api.local_api.runner.invoke("ProxyFunction", event)

    assert result["statusCode"] == 200
    [received] = echo.calls()
    assert received.method == event["requestContext"]["http"]["method"]
    assert received.path == "/api" + event["rawPath"].removeprefix("/proxy")
    assert received.header("authorization") == "Bearer gho_1"
