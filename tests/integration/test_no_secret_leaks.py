"""No secret value appears in any API reply (but the token endpoint's) or in any log line.

Every secret below is distinctive, so a leak anywhere — reply body, header, log record, stdout
or stderr — is found by a plain substring search.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.conftest import ApiClient
from tests.support.oauth_server import OAuthServer

CLIENT_SECRET = "client-secret-LEAKCHECK-1"
NEW_CLIENT_SECRET = "client-secret-LEAKCHECK-2"
API_KEY = "api-key-LEAKCHECK-3"
PASSWORD = "password-LEAKCHECK-4"
CUSTOM_SECRET = "custom-LEAKCHECK-5"


class LineCapture(logging.Handler):
    """Every line the `terapi` logger emits, formatted exactly as Powertools writes it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def terapi_log() -> Iterator[LineCapture]:
    """Capture the application's log lines whatever stream Powertools bound at import.

    Powertools keeps the stdout it saw when first imported, so capturing file descriptors
    alone would miss its lines whenever another test imported it first.
    """
    from terapi.observability import logger

    capture = LineCapture()
    capture.setFormatter(logger.registered_formatter)
    underlying = logging.getLogger(logger.name)
    underlying.addHandler(capture)
    yield capture
    underlying.removeHandler(capture)


@pytest.fixture
def provider() -> Iterator[OAuthServer]:
    with OAuthServer(client_secret=CLIENT_SECRET) as server:
        yield server


def exercise_every_endpoint(api: ApiClient, provider: OAuthServer) -> tuple[list[str], set[str]]:
    """Drive the API through its routes; return the replies and the tokens that were issued."""
    issued = provider.issue_tokens()
    secrets = {CLIENT_SECRET, NEW_CLIENT_SECRET, API_KEY, PASSWORD, CUSTOM_SECRET,
               issued["access_token"], issued["refresh_token"]}
    calls = [
        ("POST", "/integration", {"provider_config_key": "inhouse", "provider": "oauth2",
                                  "oauth_client_id": provider.client_id,
                                  "oauth_client_secret": CLIENT_SECRET,
                                  "authorization_url": provider.url("/authorize"),
                                  "token_url": provider.url("/token")}),
        ("POST", "/integration", {"provider_config_key": "stripe", "provider": "stripe"}),
        ("GET", "/integration", None),
        ("GET", "/integration/inhouse", None),
        ("POST", "/connection", {"connection_id": "o", "provider_config_key": "inhouse",
                                 "credentials": {"access_token": issued["access_token"],
                                                 "refresh_token": issued["refresh_token"],
                                                 "expires_at": "2020-01-01T00:00:00Z"}}),
        ("POST", "/connection", {"connection_id": "k", "provider_config_key": "stripe",
                                 "credentials": {"type": "custom", "token": CUSTOM_SECRET}}),
        ("POST", "/connection", {"connection_id": "b", "provider_config_key": "inhouse",
                                 "credentials": {"type": "basic", "username": "u",
                                                 "password": PASSWORD}}),
        ("POST", "/connection", {"connection_id": "bad", "provider_config_key": "stripe",
                                 "credentials": {"api_key": API_KEY, "unexpected": API_KEY}}),
        ("POST", "/connection", {"connection_id": "bad", "provider_config_key": "stripe",
                                 "credentials": {"type": "oauth2", "access_token": API_KEY,
                                                 "expires_at": API_KEY}}),
        ("GET", "/connection", None),
        ("GET", "/connection/o?provider_config_key=inhouse", None),
        ("PATCH", "/connection/o/metadata?provider_config_key=inhouse", {"plan": "pro"}),
        ("PATCH", "/integration/inhouse", {"oauth_client_secret": NEW_CLIENT_SECRET}),
        ("DELETE", "/connection/b?provider_config_key=inhouse", None),
        ("DELETE", "/integration/inhouse", None),
    ]
    replies = []
    for method, path, body in calls:
        status, reply, headers = api.request(method, path, json=body)
        assert status < 500, (method, path, reply)
        replies.append(f"{reply} {headers}")
    return replies, secrets


def test_no_secret_in_replies_or_logs(api: ApiClient, provider: OAuthServer,
                                      terapi_log: LineCapture,
                                      capfd: pytest.CaptureFixture[str],
                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    replies, secrets = exercise_every_endpoint(api, provider)
    out, err = capfd.readouterr()
    records = [f"{r.getMessage()} {r.__dict__}" for r in caplog.records]
    logged = "\n".join([out, err, *records, *terapi_log.lines])

    assert "connection created" in "\n".join(terapi_log.lines), "the log capture saw nothing"
    for secret in secrets:
        assert not [r for r in replies if secret in r], "a reply carries a secret"
        assert secret not in logged, "a log line carries a secret"


def test_refresh_logs_no_token(api: ApiClient, provider: OAuthServer,
                               terapi_log: LineCapture, capfd: pytest.CaptureFixture[str]) -> None:
    issued = provider.issue_tokens()
    api.request("POST", "/integration", json={
        "provider_config_key": "inhouse", "provider": "oauth2",
        "oauth_client_id": provider.client_id, "oauth_client_secret": CLIENT_SECRET,
        "authorization_url": provider.url("/authorize"), "token_url": provider.url("/token")})
    api.request("POST", "/connection", json={
        "connection_id": "o", "provider_config_key": "inhouse",
        "credentials": {"access_token": issued["access_token"],
                        "refresh_token": issued["refresh_token"],
                        "expires_at": "2020-01-01T00:00:00Z"}})
    provider.fail_token("server_error")

    status, reply, _ = api.request("GET", "/auth/token/inhouse/o")
    out, err = capfd.readouterr()
    logged = "\n".join([out, err, *terapi_log.lines])

    assert status == 200 and reply["access_token"] not in logged
    assert "token refreshed" in logged and "token refresh attempt failed" in logged
    assert issued["refresh_token"] not in logged and CLIENT_SECRET not in logged
