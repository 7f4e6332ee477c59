"""The hosted OAuth flow end to end over real HTTP against a loopback authorization server.

Terapi's routes run in-process through the local gateway (`api`); the provider is a real HTTP
server on 127.0.0.1 (`tests.support.oauth_server`). Nothing leaves the machine. Every failure
path checks that no connection was created and every reply is checked for token leaks.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import boto3
import pytest

from tests.conftest import ApiClient
from tests.support.oauth_server import OAuthServer

KEY = "loopback"
CALLBACK = "http://localhost:3003/oauth/callback"
CLIENT_ID, CLIENT_SECRET = "loopback-client", "loopback-secret"


@pytest.fixture
def oauth() -> Iterator[OAuthServer]:
    with OAuthServer(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as server:
        yield server


class Flow:
    """Drives one end user through connect, consent and callback, remembering every reply."""

    def __init__(self, api: ApiClient, oauth: OAuthServer):
        self.api, self.oauth = api, oauth
        self.replies: list[Any] = []

    def request(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any, dict[str, str]]:
        status, body, headers = self.api.request(method, path, **kwargs)
        self.replies.append((body, headers))
        return status, body, headers

    def integration(self, key: str = KEY, **settings: Any) -> dict:
        body = {"provider_config_key": key, "provider": "oauth2", "oauth_client_id": CLIENT_ID,
                "oauth_client_secret": CLIENT_SECRET, "oauth_scopes": "read,write",
                "authorization_url": self.oauth.url("/authorize"),
                "token_url": self.oauth.url("/token"), "token_auth_method":
                "client_secret_basic", **settings}
        status, reply, _ = self.request("POST", "/integration", json=body)
        assert status == 200, reply
        return reply

    def session(self, allowed: list[str] | None = None, **body: Any) -> dict:
        payload = {"allowed_integrations": allowed or [KEY], **body}
        status, reply, _ = self.request("POST", "/connect/sessions", json=payload)
        assert status == 200, reply
        return reply

    def connect(self, token: str, key: str = KEY, **params: str) -> tuple[int, Any, dict]:
        query = urlencode({"connect_session_token": token, **params})
        return self.request("GET", f"/oauth/connect/{key}?{query}", key=None)

    def consent(self, authorization_url: str) -> dict[str, str]:
        """Follow the redirect to the loopback /authorize; return the callback's query."""
        parts = urlsplit(authorization_url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
        connection.request("GET", f"{parts.path}?{parts.query}")
        reply = connection.getresponse()
        location = reply.getheader("Location") or ""
        connection.close()
        assert reply.status == 302 and location.startswith(CALLBACK), location
        return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}

    def callback(self, params: dict[str, str], *, as_json: bool = False) -> tuple[int, Any, dict]:
        headers = {"Accept": "application/json"} if as_json else {}
        return self.request("GET", f"/oauth/callback?{urlencode(params)}", key=None,
                            headers=headers)

    def start(self, **session: Any) -> dict[str, str]:
        """Session, connect and consent: the callback parameters the provider sent back."""
        token = self.session(**session)["token"]
        status, _, headers = self.connect(token)
        assert status == 302, headers
        return self.consent(headers["location"])

    def connections(self, key: str = KEY) -> list[dict]:
        status, body, _ = self.api.request("GET", f"/connection?provider_config_key={key}")
        assert status == 200
        return body["connections"]

    def leaked(self, *secrets: str) -> list[str]:
        text = json.dumps([[str(body), headers] for body, headers in self.replies])
        return [s for s in secrets if s in text]


@pytest.fixture
def flow(api: ApiClient, oauth: OAuthServer) -> Flow:
    flow = Flow(api, oauth)
    flow.integration()
    return flow


def stored_secret(connection_id: str, key: str = KEY) -> dict:
    from terapi.store.connections import ConnectionStore

    record = ConnectionStore().get(key, connection_id)
    value = boto3.client("secretsmanager").get_secret_value(SecretId=record.secret_arn)
    return json.loads(value["SecretString"])


def expire(pk: str, sk: str) -> None:
    """Move an item's expiry into the past (moto never runs TTL; AWS runs it late)."""
    from terapi.settings import get_settings
    from terapi.store.sessions import token_hash

    boto3.client("dynamodb").update_item(
        TableName=get_settings().table_name,
        Key={"pk": {"S": f"{pk}#{token_hash(sk)}"}, "sk": {"S": pk}},
        UpdateExpression="SET expires_at = :past", ExpressionAttributeValues={":past": {"N": "1"}})


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


# The happy path


def test_full_flow_stores_the_providers_tokens_and_no_reply_shows_them(flow: Flow) -> None:
    session = flow.session(connection_id="user-42", metadata={"plan": "pro"},
                           end_user={"id": "u42", "email": "ada@example.com"})
    assert session["connect_link"] == (
        f"http://localhost:3003/oauth/connect/{KEY}?connect_session_token={session['token']}")

    status, _, headers = flow.connect(session["token"])

    assert status == 302
    sent = query_of(headers["location"])
    assert headers["location"].startswith(flow.oauth.url("/authorize?"))
    assert sent["response_type"] == "code" and sent["client_id"] == CLIENT_ID
    assert sent["redirect_uri"] == CALLBACK and sent["scope"] == "read write"
    assert sent["code_challenge_method"] == "S256" and len(sent["code_challenge"]) == 43
    assert len(sent["state"]) >= 43 and headers["referrer-policy"] == "no-referrer"

    params = flow.consent(headers["location"])
    status, page, headers = flow.callback(params)

    assert status == 200 and headers["content-type"].startswith("text/html")
    assert '"type": "terapi:connect"' in page and '"success": true' in page
    assert "script-src 'sha256-" in headers["content-security-policy"]
    [connection] = flow.connections()
    assert connection["id"] == "user-42" and connection["metadata"] == {"plan": "pro"}
    assert connection["end_user"] == {"id": "u42", "email": "ada@example.com"}
    secret = stored_secret("user-42")
    assert secret["access_token"] in flow.oauth.access_tokens
    assert secret["refresh_token"] in flow.oauth.refresh_tokens
    token_request = flow.oauth.token_requests[0]
    assert token_request.client_auth == "client_secret_basic"
    assert token_request.form["redirect_uri"] == CALLBACK and token_request.form["code_verifier"]
    flow.replies.append((flow.connections(), {}))
    assert flow.leaked(secret["access_token"], secret["refresh_token"], params["code"],
                       CLIENT_SECRET) == []


def test_json_callback_returns_the_connection_without_secrets(flow: Flow) -> None:
    params = flow.start(metadata={"team": 7})

    status, body, _ = flow.callback(params, as_json=True)

    assert status == 200 and body["provider_config_key"] == KEY
    assert body["id"].startswith("conn_") and body["metadata"] == {"team": 7}
    assert body["credentials"]["type"] == "oauth2" and body["credentials"]["expires_at"]
    secret = stored_secret(body["id"])
    assert flow.leaked(secret["access_token"], secret["refresh_token"]) == []


def test_reconnecting_an_existing_connection_replaces_its_tokens(flow: Flow) -> None:
    flow.callback(flow.start(connection_id="same"), as_json=True)
    first = stored_secret("same")["access_token"]

    status, _, _ = flow.callback(flow.start(connection_id="same"), as_json=True)

    assert status == 200 and len(flow.connections()) == 1
    assert stored_secret("same")["access_token"] not in (first, None)


def test_a_session_webhook_url_becomes_the_connections_override(flow: Flow) -> None:
    params = flow.start(connection_id="hooked", webhook_url="https://tenant-7.example.com/hooks")

    status, _, _ = flow.callback(params, as_json=True)
    _, override, _ = flow.api.request(
        "GET", f"/webhooks/connections?provider_config_key={KEY}&connection_id=hooked")

    assert status == 200
    assert override["webhook_url"] == "https://tenant-7.example.com/hooks"


def test_a_session_webhook_url_must_be_https(flow: Flow) -> None:
    status, reply, _ = flow.api.request("POST", "/connect/sessions", json={
        "allowed_integrations": [KEY], "webhook_url": "http://tenant-7.example.com/hooks"})

    assert status == 400 and reply["error"] == "invalid_webhook_url"
    assert reply["message"].startswith("webhook_url")


def test_success_url_gets_a_redirect_with_the_connection_id(flow: Flow) -> None:
    params = flow.start(connection_id="c1", success_url="https://app.example.com/done?x=1")

    status, _, headers = flow.callback(params)

    assert status == 302
    assert query_of(headers["location"]) == {"x": "1", "connection_id": "c1",
                                             "provider_config_key": KEY}


def test_result_page_posts_only_to_the_declared_origin(flow: Flow) -> None:
    status, page, _ = flow.callback(flow.start(origin="https://app.example.com"))

    assert status == 200 and '"https://app.example.com");' in page


def test_provider_without_pkce_gets_no_challenge(api: ApiClient, oauth: OAuthServer) -> None:
    flow = Flow(api, oauth)
    flow.integration(pkce=False, token_auth_method="client_secret_post")
    token = flow.session()["token"]

    _, _, headers = flow.connect(token)
    params = flow.consent(headers["location"])
    status, _, _ = flow.callback(params, as_json=True)

    assert "code_challenge" not in query_of(headers["location"]) and status == 200
    assert "code_verifier" not in oauth.token_requests[0].form
    assert oauth.token_requests[0].client_auth == "client_secret_post"


def test_connection_config_params_fill_the_authorization_url(flow: Flow) -> None:
    status, _, _ = flow.request("POST", "/integration", json={
        "provider_config_key": "zendesk", "provider": "zendesk", "oauth_client_id": "zd"})
    assert status == 200
    token = flow.session(allowed=["zendesk"])["token"]

    status, _, headers = flow.connect(token, "zendesk", subdomain="acme")
    missing, missing_body, _ = flow.connect(token, "zendesk")
    evil, evil_body, _ = flow.connect(token, "zendesk", subdomain="evil.com/x")

    assert status == 302
    assert headers["location"].startswith("https://acme.zendesk.com/oauth/authorizations/new?")
    assert "code_challenge" not in headers["location"]
    assert missing == 400 and "subdomain" in missing_body
    assert evil == 400 and "evil.com" not in evil_body


def test_concurrent_replays_of_one_callback_store_exactly_once(
        flow: Flow, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.dynamodb.models import DynamoDBBackend

    # DynamoDB applies each conditional write atomically; moto does not under threads, so it
    # is given that one guarantee here. What is proven is that consuming a state is one write.
    lock, update = threading.Lock(), DynamoDBBackend.update_item

    def atomic_update(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return update(*args, **kwargs)

    monkeypatch.setattr(DynamoDBBackend, "update_item", atomic_update)
    params = flow.start(connection_id="raced")
    results: list[int] = []

    def replay() -> None:
        results.append(flow.api.request("GET", f"/oauth/callback?{urlencode(params)}",
                                        key=None, headers={"Accept": "application/json"})[0])

    threads = [threading.Thread(target=replay) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [200, 400, 400, 400]
    assert flow.oauth.token_calls == 1


# Failure paths: each ends on a clear error and creates no connection


def assert_refused(flow: Flow, reply: tuple[int, Any, dict], status: int, error: str) -> None:
    assert reply[0] == status, reply[1]
    if isinstance(reply[1], dict):
        assert reply[1]["error"] == error and reply[1]["message"]
    else:
        assert f'"error": "{error}"' in reply[1] and '"success": false' in reply[1]
    assert flow.connections() == []


def test_replayed_state_is_refused_without_a_second_exchange(flow: Flow) -> None:
    params = flow.start(connection_id="once")
    assert flow.callback(params, as_json=True)[0] == 200

    status, body, _ = flow.callback(params, as_json=True)

    assert status == 400 and body["error"] == "invalid_state"
    assert "already" in body["message"] and flow.oauth.token_calls == 1


def test_forged_state_is_refused(flow: Flow) -> None:
    assert_refused(flow, flow.callback({"code": "c", "state": "forged"}), 400, "invalid_state")
    assert_refused(flow, flow.callback({"code": "c"}, as_json=True), 400, "invalid_state")


def test_expired_state_is_refused(flow: Flow) -> None:
    params = flow.start()
    expire("ST", params["state"])

    assert_refused(flow, flow.callback(params, as_json=True), 400, "state_expired")
    assert flow.oauth.token_calls == 0


def test_expired_session_is_refused_at_connect_and_at_callback(flow: Flow) -> None:
    session = flow.session()
    _, _, headers = flow.connect(session["token"])
    params = flow.consent(headers["location"])
    expire("S", session["token"])

    assert_refused(flow, flow.connect(session["token"]), 401, "connect_session_expired")
    assert_refused(flow, flow.callback(params, as_json=True), 401, "connect_session_expired")


def test_unknown_session_token_is_refused(flow: Flow) -> None:
    assert_refused(flow, flow.connect("tcs_nope"), 401, "invalid_connect_session")
    reply = flow.request("GET", f"/oauth/connect/{KEY}", key=None)
    assert_refused(flow, reply, 401, "invalid_connect_session")


def test_state_whose_integration_changed_is_refused(flow: Flow) -> None:
    params = flow.start()
    status, _, _ = flow.request("PATCH", f"/integration/{KEY}", json={"oauth_client_id": "other"})
    assert status == 200

    assert_refused(flow, flow.callback(params, as_json=True), 400, "state_mismatch")
    assert flow.oauth.token_calls == 0


def test_integration_outside_the_session_is_forbidden(flow: Flow) -> None:
    flow.integration("other")
    token = flow.session()["token"]

    reply = flow.connect(token, "other")

    assert_refused(flow, reply, 403, "integration_not_allowed")
    assert flow.connections("other") == []


def test_provider_denial_is_reported_escaped(flow: Flow) -> None:
    flow.oauth.deny = True
    params = flow.start()
    params["error_description"] = "<script>alert(1)</script>"

    status, page, _ = flow.callback(params)

    assert_refused(flow, (status, page, {}), 400, "authorization_denied")
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page


def test_provider_denial_redirects_to_the_error_url(flow: Flow) -> None:
    flow.oauth.deny = True
    params = flow.start(connection_id="c9", error_url="http://127.0.0.1:8080/failed")

    status, _, headers = flow.callback(params)

    assert status == 302 and flow.connections() == []
    assert query_of(headers["location"]) == {"connection_id": "c9", "provider_config_key": KEY,
                                             "error": "authorization_denied"}


def test_missing_code_is_refused(flow: Flow) -> None:
    params = flow.start()

    assert_refused(flow, flow.callback({"state": params["state"]}, as_json=True), 400,
                   "missing_code")


def test_refused_code_exchange_is_a_400(flow: Flow) -> None:
    params = flow.start()
    flow.oauth.fail_token("invalid_grant")

    assert_refused(flow, flow.callback(params), 400, "token_exchange_failed")


def test_failing_token_endpoint_is_a_502(flow: Flow) -> None:
    params = flow.start()
    flow.oauth.fail_token("server_error")

    assert_refused(flow, flow.callback(params, as_json=True), 502, "provider_unavailable")


# Connect sessions


def test_connect_session_needs_the_secret_key(flow: Flow) -> None:
    status, body, _ = flow.api.request("POST", "/connect/sessions", key=None,
                                       json={"allowed_integrations": [KEY]})

    assert status == 401 and body["error"] == "unauthorized"


@pytest.mark.parametrize(("body", "field"), [
    ({"allowed_integrations": ["nope"]}, "allowed_integrations"),
    ({"allowed_integrations": []}, "allowed_integrations"),
    ({"allowed_integrations": [KEY], "success_url": "http://app.example.com/ok"}, "success_url"),
    ({"allowed_integrations": [KEY], "error_url": "javascript:alert(1)"}, "error_url"),
    ({"allowed_integrations": [KEY], "origin": "https://app.example.com/path"}, "origin"),
    ({"allowed_integrations": [KEY], "ttl_seconds": 59}, "ttl_seconds"),
    ({"allowed_integrations": [KEY], "ttl_seconds": 86401}, "ttl_seconds"),
    ({"allowed_integrations": [KEY], "end_user": {"email": "a@b.c"}}, "end_user.id"),
])
def test_bad_connect_session_requests_are_400s(flow: Flow, body: dict, field: str) -> None:
    status, reply, _ = flow.api.request("POST", "/connect/sessions", json=body)

    assert status == 400 and reply["message"].startswith(field), reply


def test_session_token_is_stored_only_as_its_hash(flow: Flow) -> None:
    from terapi.settings import get_settings
    from terapi.store.sessions import token_hash

    session = flow.session(allowed=[KEY, KEY], ttl_seconds=60)
    items = boto3.client("dynamodb").scan(TableName=get_settings().table_name)["Items"]

    assert session["token"].startswith("tcs_") and len(session["token"]) >= 47
    assert session["token"] not in json.dumps(items)
    assert any(i["pk"]["S"] == f"S#{token_hash(session['token'])}" for i in items)
    assert session["allowed_integrations"] == [KEY]


def test_multi_integration_session_gets_a_link_template(flow: Flow) -> None:
    flow.integration("second")

    session = flow.session(allowed=[KEY, "second"])

    assert "/oauth/connect/{provider_config_key}?connect_session_token=" in (
        session["connect_link"])


# Connections made without a browser: verification, client credentials, revocation


@pytest.fixture
def provider_at(oauth: OAuthServer, monkeypatch: pytest.MonkeyPatch):
    """Point a catalog provider's URLs at the loopback server (tests only; no production knob)."""
    from terapi import catalog

    original = catalog.get_provider
    overrides: dict[str, dict[str, Any]] = {}

    def patched(name: str) -> Any:
        provider = original(name)
        return provider.model_copy(update=overrides[name]) if name in overrides else provider

    monkeypatch.setattr(catalog, "get_provider", patched)

    def point(name: str, **fields: str) -> None:
        overrides[name] = fields

    return point


def create(api: ApiClient, key: str, provider: str, **extra: Any) -> None:
    status, body, _ = api.request("POST", "/integration", json={
        "provider_config_key": key, "provider": provider, **extra})
    assert status == 200, body


def import_connection(api: ApiClient, key: str, credentials: Any = None,
                      **extra: Any) -> tuple[int, Any]:
    body = {"connection_id": "c1", "provider_config_key": key, **extra}
    if credentials is not None:
        body["credentials"] = credentials
    status, reply, _ = api.request("POST", "/connection", json=body)
    return status, reply


def test_api_key_is_verified_before_it_is_stored(api: ApiClient, oauth: OAuthServer,
                                                 provider_at: Any) -> None:
    provider_at("openai", api_base_url=oauth.url("/verify"))
    oauth.api_keys.add("sk-good")
    create(api, "openai", "openai")

    rejected = import_connection(api, "openai", {"api_key": "sk-bad"})
    accepted = import_connection(api, "openai", {"api_key": "sk-good"})

    assert rejected[0] == 400 and rejected[1]["error"] == "connection_test_failed"
    assert "sk-bad" not in rejected[1]["message"]
    assert accepted[0] == 200 and accepted[1]["credentials"]["type"] == "api_key"
    assert [r.path for r in oauth.verify_requests] == ["/verify/models"] * 2
    assert oauth.verify_requests[1].headers["authorization"] == "Bearer sk-good"
    assert stored_secret("c1", "openai")["api_key"] == "sk-good"


def test_rejected_api_key_creates_no_connection(api: ApiClient, oauth: OAuthServer,
                                                provider_at: Any) -> None:
    provider_at("anthropic", api_base_url=oauth.url("/verify"))
    create(api, "anthropic", "anthropic")

    status, body = import_connection(api, "anthropic", {"api_key": "wrong"})

    assert status == 400 and body["error"] == "connection_test_failed"
    assert oauth.verify_requests[0].headers["x-api-key"] == "wrong"
    assert oauth.verify_requests[0].headers["anthropic-version"] == "2023-06-01"
    status, listing, _ = api.request("GET", "/connection?provider_config_key=anthropic")
    assert listing["connections"] == []


def test_basic_credentials_use_a_placeholder_password_when_optional(
        api: ApiClient, oauth: OAuthServer, provider_at: Any) -> None:
    provider_at("freshdesk", api_base_url=oauth.url("/verify"))
    oauth.basic_users["fd-key"] = "x"
    create(api, "freshdesk", "freshdesk")

    status, body = import_connection(api, "freshdesk", {"username": "fd-key"},
                                     connection_config={"subdomain": "acme"})

    assert status == 200, body
    assert body["connection_config"] == {"subdomain": "acme"}


def test_unreachable_provider_is_a_502_and_stores_nothing(api: ApiClient,
                                                          provider_at: Any) -> None:
    provider_at("stripe", api_base_url="http://127.0.0.1:9")
    create(api, "stripe", "stripe")

    status, body = import_connection(api, "stripe", {"api_key": "sk_live_secret"})

    assert status == 502 and body["error"] == "provider_unavailable"
    assert "sk_live_secret" not in body["message"]


def test_provider_5xx_during_verification_is_a_502(api: ApiClient, oauth: OAuthServer,
                                                   provider_at: Any) -> None:
    provider_at("stripe", api_base_url=oauth.url("/verify"))
    oauth.verify_status = 503
    create(api, "stripe", "stripe")

    status, body = import_connection(api, "stripe", {"api_key": "sk_test"})

    assert status == 502 and body["error"] == "provider_unavailable"


def test_client_credentials_connection_fetches_its_token(api: ApiClient,
                                                         oauth: OAuthServer) -> None:
    create(api, "cc", "oauth2-cc", token_url=oauth.url("/token"), oauth_client_id=CLIENT_ID,
           oauth_client_secret=CLIENT_SECRET, oauth_scopes="jobs:read")

    status, body = import_connection(api, "cc", metadata={"env": "prod"})

    assert status == 200, body
    assert body["credentials"]["type"] == "oauth2" and body["credentials"]["expires_at"]
    secret = stored_secret("c1", "cc")
    assert secret["access_token"] in oauth.access_tokens and "refresh_token" not in secret
    assert "client_secret" not in secret
    assert oauth.token_requests[0].form["grant_type"] == "client_credentials"
    assert oauth.token_requests[0].form["scope"] == "jobs:read"
    assert secret["access_token"] not in json.dumps(body)


def test_client_credentials_from_the_request_override_the_integration(
        api: ApiClient, oauth: OAuthServer) -> None:
    create(api, "cc", "oauth2-cc", token_url=oauth.url("/token"), oauth_client_id="stale",
           oauth_client_secret="stale-secret")

    refused = import_connection(api, "cc")
    status, body = import_connection(api, "cc", {"client_id": CLIENT_ID,
                                                 "client_secret": CLIENT_SECRET})

    assert refused[0] == 400 and refused[1]["error"] == "connection_test_failed"
    assert status == 200, body
    secret = stored_secret("c1", "cc")
    assert (secret["client_id"], secret["client_secret"]) == (CLIENT_ID, CLIENT_SECRET)
    assert CLIENT_SECRET not in json.dumps(body)


def oauth2_connection(api: ApiClient, oauth: OAuthServer) -> dict:
    create(api, KEY, "oauth2", authorization_url=oauth.url("/authorize"),
           token_url=oauth.url("/token"), oauth_client_id=CLIENT_ID,
           oauth_client_secret=CLIENT_SECRET)
    tokens = oauth.issue_tokens()
    status, _ = import_connection(api, KEY, {"access_token": tokens["access_token"],
                                             "refresh_token": tokens["refresh_token"]})
    assert status == 200
    return tokens


def test_delete_revokes_the_token_at_the_provider(api: ApiClient, oauth: OAuthServer,
                                                  provider_at: Any) -> None:
    provider_at("oauth2", revoke_url=oauth.url("/revoke"))
    tokens = oauth2_connection(api, oauth)

    status, _, _ = api.request("DELETE", f"/connection/c1?provider_config_key={KEY}")

    assert status == 204
    [revoke] = oauth.revoke_requests
    assert revoke.form["token"] == tokens["refresh_token"]
    assert revoke.form["token_type_hint"] == "refresh_token"
    assert revoke.client_id == CLIENT_ID and revoke.form["client_secret"] == CLIENT_SECRET


def test_deleting_the_integration_revokes_its_connections_tokens(
        api: ApiClient, oauth: OAuthServer, provider_at: Any) -> None:
    provider_at("oauth2", revoke_url=oauth.url("/revoke"))
    tokens = oauth2_connection(api, oauth)

    status, _, _ = api.request("DELETE", f"/integration/{KEY}")

    assert status == 204
    assert [r.form["token"] for r in oauth.revoke_requests] == [tokens["refresh_token"]]
    assert api.request("GET", f"/connection/c1?provider_config_key={KEY}")[0] == 404


@pytest.mark.parametrize("failure", ["refused", "unreachable"])
def test_failing_revoke_still_deletes(api: ApiClient, oauth: OAuthServer, provider_at: Any,
                                      failure: str) -> None:
    url = oauth.url("/revoke") if failure == "refused" else "http://127.0.0.1:9/revoke"
    provider_at("oauth2", revoke_url=url)
    oauth.revoke_status = 500
    oauth2_connection(api, oauth)

    status, _, _ = api.request("DELETE", f"/connection/c1?provider_config_key={KEY}")

    assert status == 204
    assert len(oauth.revoke_requests) == (1 if failure == "refused" else 0)
    status, _, _ = api.request("GET", f"/connection/c1?provider_config_key={KEY}")
    assert status == 404


# The sample events in events/ run against the handler as `sam local invoke` would run them


@pytest.mark.parametrize(("name", "status"), [("connect-sessions-create", 200),
                                              ("oauth-connect", 401), ("oauth-callback", 400)])
def test_sample_events_invoke_the_oauth_function(api: ApiClient, name: str, status: int) -> None:
    from devserver.functions import LambdaContext, load_function

    create(api, "github-prod", "github", oauth_client_id="client-id")
    handler = load_function("functions/oauth/", "app.lambda_handler")
    event = json.loads((Path(__file__).parents[2] / "events" / f"{name}.json").read_text())

    reply = handler(event, LambdaContext("terapi-local-OAuthFunction"))

    assert reply["statusCode"] == status, reply["body"]
