"""The hosted OAuth 1.0a connect flow end to end against a loopback OAuth 1.0a provider.

Terapi's routes run in-process (`api`); the catalog's `trello` provider is pointed at a real HTTP
server on 127.0.0.1 (`tests.support.oauth1_server`), which checks every signature with oauthlib.
Nothing leaves the machine, and every reply is checked for token leaks.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import boto3
import pytest

from tests.conftest import ApiClient
from tests.support.oauth1_server import OAuth1Server

KEY = "trello-prod"
CALLBACK = "http://localhost:3003/oauth/callback"


@pytest.fixture
def provider1() -> Iterator[OAuth1Server]:
    with OAuth1Server() as server:
        yield server


@pytest.fixture
def flow(api: ApiClient, provider1: OAuth1Server, monkeypatch: pytest.MonkeyPatch) -> Flow1:
    from terapi import catalog

    original = catalog.get_provider
    urls = {"request_token_url": provider1.url("/request_token"),
            "authorization_url": provider1.url("/authorize"),
            "token_url": provider1.url("/access_token")}

    def patched(name: str) -> Any:
        found = original(name)
        return found.model_copy(update=urls) if name == "trello" else found

    monkeypatch.setattr(catalog, "get_provider", patched)
    flow = Flow1(api, provider1)
    status, reply, _ = api.request("POST", "/integration", json={
        "provider_config_key": KEY, "provider": "trello",
        "oauth_client_id": provider1.consumer_key,
        "oauth_client_secret": provider1.consumer_secret})
    assert status == 200, reply
    return flow


class Flow1:
    """Drives one end user through connect, consent and callback, remembering every reply."""

    def __init__(self, api: ApiClient, provider: OAuth1Server):
        self.api, self.provider = api, provider
        self.replies: list[Any] = []

    def request(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any, dict[str, str]]:
        status, body, headers = self.api.request(method, path, **kwargs)
        self.replies.append((body, headers))
        return status, body, headers

    def connect(self, *, as_json: bool = False,
                **session: Any) -> tuple[int, Any, dict[str, str]]:
        status, reply, _ = self.request("POST", "/connect/sessions",
                                        json={"allowed_integrations": [KEY], **session})
        assert status == 200, reply
        query = urlencode({"connect_session_token": reply["token"]})
        headers = {"Accept": "application/json"} if as_json else {}
        return self.request("GET", f"/oauth/connect/{KEY}?{query}", key=None, headers=headers)

    def consent(self, authorization_url: str) -> dict[str, str]:
        """Follow the redirect to the loopback /authorize; return the callback's query."""
        parts = urlsplit(authorization_url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
        connection.request("GET", f"{parts.path}?{parts.query}")
        reply = connection.getresponse()
        location = reply.getheader("Location") or ""
        connection.close()
        assert reply.status == 302 and location.startswith(CALLBACK + "?"), location
        return query_of(location)

    def start(self, **session: Any) -> dict[str, str]:
        status, _, headers = self.connect(**session)
        assert status == 302, headers
        return self.consent(headers["location"])

    def callback(self, params: dict[str, str], *, as_json: bool = True) -> tuple[int, Any, dict]:
        headers = {"Accept": "application/json"} if as_json else {}
        return self.request("GET", f"/oauth/callback?{urlencode(params)}", key=None,
                            headers=headers)

    def connections(self) -> list[dict]:
        status, body, _ = self.api.request("GET", f"/connection?provider_config_key={KEY}")
        assert status == 200
        return body["connections"]

    def leaked(self, *values: str) -> list[str]:
        text = json.dumps([[str(body), headers] for body, headers in self.replies])
        return [value for value in values if value in text]


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def stored_secret(connection_id: str) -> dict:
    from terapi.store.connections import ConnectionStore

    record = ConnectionStore().get(KEY, connection_id)
    value = boto3.client("secretsmanager").get_secret_value(SecretId=record.secret_arn)
    return json.loads(value["SecretString"])


def state_items() -> list[dict]:
    from terapi.settings import get_settings

    items = boto3.client("dynamodb").scan(TableName=get_settings().table_name)["Items"]
    return [item for item in items if item["sk"]["S"] == "ST"]


def test_full_flow_stores_the_access_token_and_no_reply_shows_it(flow: Flow1) -> None:
    status, _, headers = flow.connect(connection_id="user-7", metadata={"plan": "pro"},
                                      end_user={"id": "u7"})

    assert status == 302
    sent = query_of(headers["location"])
    assert headers["location"].startswith(flow.provider.url("/authorize?"))
    assert sent["oauth_token"] in flow.provider.request_tokens
    assert sent["expiration"] == "never" and sent["scope"] == "read"
    assert flow.provider.request_tokens[sent["oauth_token"]].callback == CALLBACK
    params = flow.consent(headers["location"])
    status, page, headers = flow.callback(params, as_json=False)

    assert status == 200 and '"success": true' in page
    [connection] = flow.connections()
    assert connection["id"] == "user-7" and connection["metadata"] == {"plan": "pro"}
    assert connection["end_user"] == {"id": "u7"}
    assert connection["credentials"]["type"] == "oauth1"
    secret = stored_secret("user-7")
    assert flow.provider.access_tokens[secret["oauth_token"]] == secret["oauth_token_secret"]
    assert secret["type"] == "oauth1" and secret["raw"]["screen_name"] == "ada"
    request_secret = flow.provider.request_tokens[params["oauth_token"]].secret
    flow.replies.append((flow.connections(), {}))
    assert flow.leaked(secret["oauth_token"], secret["oauth_token_secret"], request_secret,
                       params["oauth_verifier"], flow.provider.consumer_secret) == []


def test_the_token_endpoint_returns_the_oauth1_credentials(flow: Flow1) -> None:
    status, connection, _ = flow.callback(flow.start())
    assert status == 200

    status, token, _ = flow.api.request("GET", f"/auth/token/{KEY}/{connection['id']}")

    secret = stored_secret(connection["id"])
    assert status == 200 and token["type"] == "oauth1"
    assert token["oauth_token"] == secret["oauth_token"]
    assert token["oauth_token_secret"] == secret["oauth_token_secret"]
    assert token["raw"]["screen_name"] == "ada" and token["raw"]["user_id"] == "42"


def test_a_replayed_callback_is_refused_without_a_second_exchange(flow: Flow1) -> None:
    params = flow.start()
    assert flow.callback(params)[0] == 200

    status, body, _ = flow.callback(params)

    assert status == 400 and body["error"] == "invalid_state"
    assert flow.provider.calls_to("/access_token") == [200]
    assert len(flow.connections()) == 1
    assert all("request_token_secret" not in item for item in state_items())


def test_a_denied_authorization_creates_no_connection(flow: Flow1) -> None:
    flow.provider.deny = True
    params = flow.start()
    assert set(params) == {"denied"}

    status, body, _ = flow.callback(params)

    assert status == 400 and body["error"] == "authorization_denied"
    assert flow.connections() == [] and flow.provider.calls_to("/access_token") == []


def test_a_failing_request_token_endpoint_is_502_and_stores_no_state(flow: Flow1) -> None:
    flow.provider.request_token_status = 500

    status, body, _ = flow.connect(as_json=True)

    assert status == 502 and body["error"] == "provider_unavailable"
    assert state_items() == [] and flow.provider.calls_to("/request_token") == [500]


def test_a_forged_oauth_token_is_refused(flow: Flow1) -> None:
    params = flow.start()

    status, body, _ = flow.callback({**params, "oauth_token": "rq_forged"})

    assert status == 400 and body["error"] == "invalid_state"
    assert flow.connections() == [] and flow.provider.calls_to("/access_token") == []
    assert flow.callback(params)[0] == 200


def test_a_bad_signature_is_refused_as_a_failed_exchange(flow: Flow1) -> None:
    flow.provider.consumer_secret = "not-the-integrations-secret"

    status, body, _ = flow.connect(as_json=True)

    assert status == 400 and body["error"] == "token_exchange_failed"
    assert state_items() == [] and flow.provider.calls_to("/request_token") == [401]
    assert flow.leaked(flow.provider.consumer_secret, "loopback-consumer-secret") == []
