"""The token endpoint: refresh on expiry, rotation safety, failure policy, warm-path cost.

A real OAuth 2.0 token endpoint runs on loopback (tests/support/oauth_server.py); it rotates
refresh tokens, so a refresh made with anything but the newest refresh token fails there.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from tests.conftest import ApiClient, LocalAws
from tests.support.aws_calls import AwsCalls
from tests.support.oauth_server import OAuthServer

KEY = "inhouse"
EXPIRED = "2020-01-01T00:00:00Z"


@pytest.fixture
def settings_env(aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Short leases, waits and cool-downs so failure tests run in seconds."""
    from terapi.settings import get_settings

    for name, value in {"TERAPI_REFRESH_LEASE_SECONDS": "3", "TERAPI_REFRESH_WAIT_SECONDS": "5",
                        "TERAPI_REFRESH_COOLDOWN_SECONDS": "60"}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    return monkeypatch


@pytest.fixture
def integration(api: ApiClient, provider: OAuthServer, settings_env: Any) -> str:
    status, body, _ = api.request("POST", "/integration", json={
        "provider_config_key": KEY, "provider": "oauth2",
        "oauth_client_id": provider.client_id, "oauth_client_secret": provider.client_secret,
        "authorization_url": provider.url("/authorize"), "token_url": provider.url("/token")})
    assert status == 200, body
    return KEY


def connect(api: ApiClient, provider: OAuthServer, connection_id: str = "user-1", *,
            expires_at: str = EXPIRED) -> dict[str, Any]:
    """Import tokens the loopback provider issued, as if a callback had stored them."""
    issued = provider.issue_tokens()
    status, body, _ = api.request("POST", "/connection", json={
        "connection_id": connection_id, "provider_config_key": KEY,
        "credentials": {"access_token": issued["access_token"],
                        "refresh_token": issued["refresh_token"], "expires_at": expires_at}})
    assert status == 200, body
    return issued


def token(api: ApiClient, connection_id: str = "user-1", force: bool = False) -> tuple[int, Any]:
    suffix = "?force_refresh=true" if force else ""
    status, body, _ = api.request("GET", f"/auth/token/{KEY}/{connection_id}{suffix}")
    return status, body


def stored_secret(api: ApiClient, connection_id: str = "user-1") -> dict[str, Any]:
    import json

    sm = boto3.client("secretsmanager")
    arn = next(s["ARN"] for s in sm.list_secrets()["SecretList"]
               if {"Key": "terapi:connection_id", "Value": connection_id} in s.get("Tags", []))
    return json.loads(sm.get_secret_value(SecretId=arn)["SecretString"])


def test_a_fresh_token_is_returned_without_calling_the_provider(
        api: ApiClient, provider: OAuthServer, integration: str) -> None:
    issued = connect(api, provider, expires_at="2999-01-01T00:00:00Z")

    status, body = token(api)

    assert status == 200 and body["access_token"] == issued["access_token"]
    assert body["type"] == "oauth2" and body["expires_at"] == "2999-01-01T00:00:00Z"
    assert provider.token_calls == 0


def test_a_token_without_expiry_is_returned_as_is(
        api: ApiClient, provider: OAuthServer, integration: str) -> None:
    api.request("POST", "/connection", json={
        "connection_id": "forever", "provider_config_key": KEY,
        "credentials": {"access_token": "long-lived"}})

    status, body = token(api, "forever")

    assert (status, body["access_token"], body["expires_at"]) == (200, "long-lived", None)
    assert provider.token_calls == 0


def test_an_expired_token_is_refreshed_and_the_connection_shows_it(
        api: ApiClient, provider: OAuthServer, integration: str) -> None:
    issued = connect(api, provider)

    status, body = token(api)
    _, connection, _ = api.request("GET", f"/connection/user-1?provider_config_key={KEY}")

    assert status == 200 and body["access_token"] != issued["access_token"]
    assert body["raw"]["access_token"] == body["access_token"]
    assert provider.token_calls == 1
    assert provider.token_requests[0].form["refresh_token"] == issued["refresh_token"]
    assert connection["credentials"]["last_refreshed_at"] is not None
    assert connection["credentials"]["expires_at"] > "2026"
    assert "access_token" not in str(connection)


def test_rotation_keeps_the_newest_refresh_token(
        api: ApiClient, provider: OAuthServer, integration: str) -> None:
    connect(api, provider)

    first = token(api, force=True)[1]
    rotated = stored_secret(api)["refresh_token"]
    second_status, second = token(api, force=True)

    assert second_status == 200 and second["access_token"] != first["access_token"]
    assert provider.token_requests[1].form["refresh_token"] == rotated
    assert stored_secret(api)["refresh_token"] != rotated


def test_a_response_without_a_refresh_token_keeps_the_old_one(
        api: ApiClient, provider: OAuthServer, integration: str) -> None:
    issued = connect(api, provider)
    provider.include_refresh_token = False

    status, _ = token(api)

    assert status == 200
    assert stored_secret(api)["refresh_token"] == issued["refresh_token"]
    assert token(api, force=True)[0] == 200


def test_invalid_grant_marks_the_connection_invalid_and_stops_calling(
        api: ApiClient, provider: OAuthServer, integration: str) -> None:
    connect(api, provider)
    provider.fail_token("invalid_grant")

    status, body = token(api)
    again, _ = token(api)
    _, connection, _ = api.request("GET", f"/connection/user-1?provider_config_key={KEY}")

    assert status == 424 and body["error"] == "credentials_invalid"
    assert "invalid_grant" in body["message"]
    assert again == 424 and provider.token_calls == 1
    assert connection["credentials"]["status"] == "invalid"
    assert "invalid_grant" in connection["credentials"]["error"]


def test_transient_failures_are_retried_with_backoff(
        api: ApiClient, provider: OAuthServer, integration: str) -> None:
    connect(api, provider)
    provider.fail_token("server_error", "server_error")

    status, body = token(api)

    assert status == 200 and body["access_token"]
    assert provider.token_calls == 3


def test_after_a_failure_the_cool_down_holds_until_forced(
        api: ApiClient, provider: OAuthServer, integration: str) -> None:
    connect(api, provider)
    provider.fail_token("server_error", "server_error", "server_error")

    failed, failure = token(api)
    cooling, cooling_body = token(api)
    calls_during_cool_down = provider.token_calls
    forced, forced_body = token(api, force=True)
    _, connection, _ = api.request("GET", f"/connection/user-1?provider_config_key={KEY}")

    assert failed == 502 and failure["error"] == "refresh_failed"
    assert cooling == 503 and cooling_body["error"] == "refresh_cooling_down"
    assert "force_refresh" in cooling_body["message"]
    assert calls_during_cool_down == 3
    assert forced == 200 and forced_body["access_token"]
    assert connection["credentials"]["status"] == "valid"
    assert "error" not in connection["credentials"]


def test_a_lease_held_past_the_wait_is_a_clear_503(
        api: ApiClient, provider: OAuthServer, integration: str, aws: LocalAws,
        settings_env: pytest.MonkeyPatch) -> None:
    from terapi.settings import get_settings
    from terapi.store.connections import ConnectionStore

    connect(api, provider)
    settings_env.setenv("TERAPI_REFRESH_WAIT_SECONDS", "0.5")
    get_settings.cache_clear()
    ConnectionStore().acquire_lease(KEY, "user-1", "someone-else", 60)

    status, body = token(api)

    assert status == 503 and body["error"] == "refresh_in_progress"
    assert provider.token_calls == 0


def test_an_expired_lease_is_taken_over(
        api: ApiClient, provider: OAuthServer, integration: str) -> None:
    from terapi.store.connections import ConnectionStore

    connect(api, provider)
    ConnectionStore().acquire_lease(KEY, "user-1", "a-holder-that-died", 0.2)

    status, _ = token(api)

    assert status == 200 and provider.token_calls == 1


def test_the_warm_path_makes_one_dynamodb_read_and_no_secrets_call(
        api: ApiClient, provider: OAuthServer, integration: str) -> None:
    connect(api, provider, expires_at="2999-01-01T00:00:00Z")
    token(api)

    with AwsCalls() as counter:
        status, _ = token(api)

    assert status == 200 and counter.calls == ["GetItem"]


def test_a_refresh_elsewhere_invalidates_this_containers_cache(
        api: ApiClient, provider: OAuthServer, integration: str) -> None:
    from terapi.services import tokens
    from terapi.store.connections import ConnectionStore

    connect(api, provider, expires_at="2999-01-01T00:00:00Z")
    stale = token(api)[1]
    record = ConnectionStore().get(KEY, "user-1")
    refreshed = token(api, force=True)[1]
    tokens.remember(record, {**stored_secret(api), "access_token": stale["access_token"]})

    with AwsCalls() as counter:
        _, body = token(api)

    assert body["access_token"] == refreshed["access_token"] != stale["access_token"]
    assert counter.calls == ["GetItem", "GetSecretValue"]


@pytest.mark.parametrize(("credentials", "expected"), [
    ({"type": "api_key", "api_key": "k-123"}, {"type": "api_key", "api_key": "k-123"}),
    ({"type": "basic", "username": "u", "password": "p"},
     {"type": "basic", "username": "u", "password": "p"}),
    ({"type": "oauth1", "oauth_token": "t", "oauth_token_secret": "s"},
     {"type": "oauth1", "oauth_token": "t", "oauth_token_secret": "s", "raw": {}}),
    ({"type": "custom", "tenant": "acme", "key": "v"},
     {"type": "custom", "values": {"tenant": "acme", "key": "v"}}),
])
def test_other_credential_types_come_back_in_their_shape(
        api: ApiClient, provider: OAuthServer, integration: str, credentials: dict[str, Any],
        expected: dict[str, Any]) -> None:
    api.request("POST", "/connection", json={"connection_id": "typed",
                                             "provider_config_key": KEY,
                                             "credentials": credentials})

    status, body = token(api, "typed")

    assert (status, body) == (200, expected)


def test_client_credentials_connections_renew_with_the_same_grant(
        api: ApiClient, provider: OAuthServer, settings_env: Any) -> None:
    status, body, _ = api.request("POST", "/integration", json={
        "provider_config_key": "machine", "provider": "oauth2-cc",
        "oauth_client_id": provider.client_id, "oauth_client_secret": provider.client_secret,
        "oauth_scopes": "read,write", "token_url": provider.url("/token")})
    assert status == 200, body
    created, connection, _ = api.request("POST", "/connection", json={
        "connection_id": "svc", "provider_config_key": "machine"})
    first = api.request("GET", "/auth/token/machine/svc")[1]

    status, renewed, _ = api.request("GET", "/auth/token/machine/svc?force_refresh=true")

    assert created == 200 and connection["credentials"]["type"] == "oauth2"
    assert status == 200 and renewed["access_token"] != first["access_token"]
    forms = [request.form for request in provider.token_requests]
    assert [f["grant_type"] for f in forms] == ["client_credentials", "client_credentials"]
    assert forms[1]["scope"] == forms[0]["scope"] and "read" in forms[1]["scope"]
