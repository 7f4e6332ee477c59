"""The scheduled refresher renews tokens that expire soon, and only those, through an index."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from devserver.functions import FunctionRunner
from tests.conftest import ApiClient, LocalAws
from tests.support.aws_calls import AwsCalls
from tests.support.oauth_server import OAuthServer

KEY = "inhouse"


@pytest.fixture
def integration(api: ApiClient, provider: OAuthServer) -> str:
    """A generic OAuth integration whose token endpoint is the loopback provider."""
    status, body, _ = api.request("POST", "/integration", json={
        "provider_config_key": KEY, "provider": "oauth2", "oauth_client_id": provider.client_id,
        "oauth_client_secret": provider.client_secret,
        "authorization_url": provider.url("/authorize"), "token_url": provider.url("/token")})
    assert status == 200, body
    return KEY


def in_minutes(minutes: int) -> str:
    moment = datetime.now(UTC) + timedelta(minutes=minutes)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def connect(api: ApiClient, provider: OAuthServer, connection_id: str, expires_at: str, *,
            refresh: bool = True) -> None:
    issued = provider.issue_tokens()
    credentials = {"access_token": issued["access_token"], "expires_at": expires_at}
    if refresh:
        credentials["refresh_token"] = issued["refresh_token"]
    status, body, _ = api.request("POST", "/connection", json={
        "connection_id": connection_id, "provider_config_key": KEY, "credentials": credentials})
    assert status == 200, body


def test_the_refresher_renews_only_connections_due_soon(
        api: ApiClient, aws: LocalAws, provider: OAuthServer, integration: str) -> None:
    connect(api, provider, "due-soon", in_minutes(8))
    connect(api, provider, "due-later", in_minutes(120))
    connect(api, provider, "no-refresh-token", in_minutes(2), refresh=False)
    runner = FunctionRunner(aws.template)

    with AwsCalls() as counter:
        summary = runner.invoke("RefresherFunction", {"source": "aws.scheduler"})
    _, soon, _ = api.request("GET", f"/connection/due-soon?provider_config_key={KEY}")
    _, later, _ = api.request("GET", f"/connection/due-later?provider_config_key={KEY}")

    assert summary == {"due": 1, "refreshed": 1, "failed": 0, "skipped": 0}
    assert provider.token_calls == 1
    assert soon["credentials"]["last_refreshed_at"] is not None
    assert soon["credentials"]["expires_at"] > in_minutes(30)
    assert later["credentials"]["last_refreshed_at"] is None
    assert "Scan" not in counter.calls and counter.calls.count("Query") == 4


def test_invalid_connections_leave_the_refresh_index(
        api: ApiClient, aws: LocalAws, provider: OAuthServer, integration: str) -> None:
    connect(api, provider, "broken", in_minutes(1))
    provider.fail_token("invalid_grant")
    assert api.request("GET", f"/auth/token/{KEY}/broken")[0] == 424
    runner = FunctionRunner(aws.template)

    summary = runner.invoke("RefresherFunction", {"source": "aws.scheduler"})

    assert summary["due"] == 0 and provider.token_calls == 1
