"""Webhooks end to end: events published by the API, delivered by the sender to a real receiver.

The API runs in-process through the local gateway; the sender is invoked with SQS events built
from messages received from the moto queue, and failures are re-delivered as SQS would (the
retry delay is 0 here, so a failed message is visible again at once). The receiver and the
token endpoint are real HTTP servers on 127.0.0.1.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import boto3
import pytest

from devserver.functions import FunctionRunner
from devserver.workers import sqs_records, succeeded_messages
from tests.conftest import ApiClient, LocalAws
from tests.support.oauth_server import OAuthServer
from tests.support.webhook_receiver import WebhookReceiver

KEY = "app"
SENDER = "WebhookSenderFunction"


@pytest.fixture
def hooks(aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebhookReceiver]:
    from terapi.settings import get_settings

    monkeypatch.setenv("TERAPI_ALLOW_LOOPBACK_WEBHOOKS", "true")
    monkeypatch.setenv("TERAPI_WEBHOOK_RETRY_BASE_SECONDS", "0")
    get_settings.cache_clear()
    with WebhookReceiver() as receiver:
        yield receiver
    get_settings.cache_clear()


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Every line the functions log, formatted exactly as Lambda would write it."""
    from terapi.observability import logger

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    logging.getLogger(logger.name).addHandler(handler)
    yield stream
    logging.getLogger(logger.name).removeHandler(handler)


@pytest.fixture
def oauth() -> Iterator[OAuthServer]:
    with OAuthServer() as server:
        yield server


@pytest.fixture
def app(api: ApiClient, hooks: WebhookReceiver, oauth: OAuthServer) -> ApiClient:
    """The API with an integration on the loopback provider and the receiver configured."""
    status, body, _ = api.request("POST", "/integration", json={
        "provider_config_key": KEY, "provider": "oauth2", "oauth_client_id": oauth.client_id,
        "oauth_client_secret": oauth.client_secret, "authorization_url": oauth.url("/authorize"),
        "token_url": oauth.url("/token"), "token_auth_method": "client_secret_basic"})
    assert status == 200, body
    status, body, _ = api.request("PUT", "/webhooks/settings", json={"primary_url": hooks.url})
    assert status == 200, body
    return api


def import_connection(api: ApiClient, connection_id: str = "user-1",
                      **credentials: Any) -> dict:
    status, body, _ = api.request("POST", "/connection", json={
        "connection_id": connection_id, "provider_config_key": KEY,
        "credentials": {"type": "oauth2", "access_token": "at-secret-import", **credentials}})
    assert status == 200, body
    return body


def queue_url(name: str = "TERAPI_WEBHOOK_QUEUE_URL") -> str:
    import os

    return os.environ[name]


def pump(aws: LocalAws, rounds: int = 30) -> int:
    """Run the sender until the queue is empty, like Lambda's poller; return the invocations."""
    sqs, url = boto3.client("sqs"), queue_url()
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    runner = FunctionRunner(aws.template)
    for invocation in range(rounds):
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                       AttributeNames=["All"]).get("Messages") or []
        if not messages:
            return invocation
        records = sqs_records(messages, arn)
        result = runner.invoke(SENDER, {"Records": records})
        done = succeeded_messages(records, result, report_failures=True)
        if done:
            sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(done)])
    raise AssertionError("the queue did not drain")


def signing_key() -> dict:
    import os

    value = boto3.client("secretsmanager").get_secret_value(
        SecretId=os.environ["TERAPI_WEBHOOK_SIGNING_KEY_ARN"])["SecretString"]
    return json.loads(value)


def events(receiver: WebhookReceiver) -> list[dict]:
    """Accepted deliveries, deduplicated by event id as a receiver should."""
    seen: dict[str, dict] = {}
    for delivery in receiver.accepted():
        event = json.loads(delivery.body)
        seen.setdefault(event["id"], event)
    return list(seen.values())


def assert_auth_event(event: dict, operation: str, connection_id: str = "user-1", *,
                      success: bool = True) -> None:
    assert event["type"] == "auth" and event["operation"] == operation
    assert event["success"] is success
    assert event["connection_id"] == connection_id and event["provider_config_key"] == KEY
    assert event["provider"] == "oauth2"
    assert event["id"].startswith("evt_") and event["created_at"].endswith("Z")
    assert ("error" in event) is (not success)


# Signature


def test_delivered_event_carries_a_signature_that_verifies(app: ApiClient, aws: LocalAws,
                                                           hooks: WebhookReceiver) -> None:
    from terapi.webhooks import verify_signature

    import_connection(app)
    pump(aws)

    [delivery] = hooks.accepted()
    key = signing_key()["current"]
    header = delivery.headers["terapi-signature"]
    assert verify_signature(delivery.body, header, key)
    assert delivery.headers["content-type"] == "application/json"
    assert_auth_event(json.loads(delivery.body), "creation")
    tampered = delivery.body.replace(b"user-1", b"user-2")
    assert not verify_signature(tampered, header, key)
    assert not verify_signature(delivery.body, header, key, now=time.time() + 301)
    assert not verify_signature(delivery.body, header, "another-key")


def test_rotation_signs_with_both_keys_for_the_window(app: ApiClient, aws: LocalAws,
                                                     hooks: WebhookReceiver) -> None:
    from terapi.webhooks import verify_signature

    old_key = signing_key()["current"]
    status, rotated, _ = app.request("POST", "/webhooks/signing-key/rotate")
    assert status == 200, rotated
    import_connection(app)
    pump(aws)

    [delivery] = hooks.accepted()
    header = delivery.headers["terapi-signature"]
    assert header.count("v1=") == 2
    assert verify_signature(delivery.body, header, rotated["signing_key"])
    assert verify_signature(delivery.body, header, old_key)
    _, settings, _ = app.request("GET", "/webhooks/settings")
    assert settings["signing_key"]["previous_key_valid_until"] == rotated[
        "previous_key_valid_until"]
    assert rotated["signing_key"] not in json.dumps(settings) and old_key not in json.dumps(
        settings)


# Retries and the dead-letter queue


def test_receiver_that_fails_twice_gets_the_event_once_in_the_end(
        app: ApiClient, aws: LocalAws, hooks: WebhookReceiver) -> None:
    hooks.fail_next(2)

    import_connection(app)
    invocations = pump(aws)

    assert invocations == 3
    assert [d.status for d in hooks.deliveries] == [500, 500, 200]
    ids = {json.loads(d.body)["id"] for d in hooks.deliveries}
    assert len(ids) == 1 and len(events(hooks)) == 1


def test_receiver_that_never_succeeds_leaves_the_event_in_the_dead_letter_queue(
        app: ApiClient, aws: LocalAws, hooks: WebhookReceiver) -> None:
    hooks.always = 503

    import_connection(app)
    pump(aws)

    assert len(hooks.deliveries) == 10 and not hooks.accepted()
    dlq = queue_url().replace("WebhookQueue", "WebhookDeadLetterQueue")
    [message] = boto3.client("sqs").receive_message(QueueUrl=dlq).get("Messages")
    assert json.loads(json.loads(message["Body"])["body"])["operation"] == "creation"


# Events


def test_reimport_is_an_override_and_deletion_a_deletion(app: ApiClient, aws: LocalAws,
                                                         hooks: WebhookReceiver) -> None:
    import_connection(app)
    import_connection(app, access_token="at-secret-second")
    status, _, _ = app.request("DELETE", f"/connection/user-1?provider_config_key={KEY}")
    assert status == 204
    pump(aws)

    received = events(hooks)
    assert [e["operation"] for e in received] == ["creation", "override", "deletion"]
    for event, operation in zip(received, ("creation", "override", "deletion"), strict=True):
        assert_auth_event(event, operation)


def test_oauth_connection_produces_a_creation_event(app: ApiClient, aws: LocalAws,
                                                    hooks: WebhookReceiver,
                                                    oauth: OAuthServer) -> None:
    import http.client
    from urllib.parse import parse_qs, urlsplit

    status, session, _ = app.request("POST", "/connect/sessions", json={
        "allowed_integrations": [KEY], "connection_id": "oauth-user"})
    assert status == 200, session
    query = urlencode({"connect_session_token": session["token"]})
    status, _, headers = app.request("GET", f"/oauth/connect/{KEY}?{query}", key=None)
    assert status == 302
    parts = urlsplit(headers["location"])
    provider = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    provider.request("GET", f"{parts.path}?{parts.query}")
    location = provider.getresponse().getheader("Location") or ""
    provider.close()
    callback = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    status, body, _ = app.request("GET", f"/oauth/callback?{urlencode(callback)}", key=None)
    assert status in (200, 302), body
    pump(aws)

    [event] = events(hooks)
    assert_auth_event(event, "creation", "oauth-user")


def test_refresh_failure_and_the_first_success_after_it_produce_refresh_events(
        app: ApiClient, aws: LocalAws, hooks: WebhookReceiver, oauth: OAuthServer) -> None:
    tokens = oauth.issue_tokens()
    import_connection(app, access_token=tokens["access_token"],
                      refresh_token=tokens["refresh_token"], expires_in=0)
    oauth.fail_token("invalid_grant")
    path = f"/auth/token/{KEY}/user-1"

    status, body, _ = app.request("GET", path)
    assert status == 424, body
    status, body, _ = app.request("GET", f"{path}?force_refresh=true")
    assert status == 200, body
    status, body, _ = app.request("GET", f"{path}?force_refresh=true")
    assert status == 200, body
    pump(aws)

    creation, failure, recovery = events(hooks)
    assert_auth_event(failure, "refresh", success=False)
    assert failure["error"] == {"type": "invalid_grant", "message": "forced failure"}
    assert_auth_event(recovery, "refresh")
    assert creation["operation"] == "creation"


def test_connection_and_session_overrides_redirect_events(app: ApiClient, aws: LocalAws,
                                                         hooks: WebhookReceiver) -> None:
    from terapi.services.connections import CredentialWrite, write_credentials

    import_connection(app)
    with WebhookReceiver() as override, WebhookReceiver() as session_target:
        status, body, _ = app.request("PUT", "/webhooks/connections", json={
            "provider_config_key": KEY, "connection_id": "user-1", "webhook_url": override.url})
        assert status == 200 and body["webhook_url"] == override.url
        status, _, _ = app.request("DELETE", f"/connection/user-1?provider_config_key={KEY}")
        assert status == 204
        write_credentials("oauth2", KEY, "from-session", CredentialWrite(
            secret_value={"type": "oauth2", "access_token": "at-secret-session"},
            changes={"credentials_type": "oauth2", "webhook_url": session_target.url}))
        pump(aws)

        assert [e["operation"] for e in events(override)] == ["deletion"]
        [event] = events(session_target)
        assert_auth_event(event, "creation", "from-session")
    assert [e["operation"] for e in events(hooks)] == ["creation"]


def test_secondary_url_receives_every_event_too(app: ApiClient, aws: LocalAws,
                                                hooks: WebhookReceiver) -> None:
    with WebhookReceiver() as secondary:
        status, body, _ = app.request("PUT", "/webhooks/settings", json={
            "primary_url": hooks.url, "secondary_url": secondary.url})
        assert status == 200 and body["secondary_url"] == secondary.url
        hooks.fail_next(1)
        import_connection(app)
        pump(aws)

        assert [d.status for d in secondary.deliveries] == [200]
    assert [d.status for d in hooks.deliveries] == [500, 200]


# The request never waits for, nor fails because of, a webhook


def test_request_returns_before_delivery_and_survives_a_queue_failure(
        app: ApiClient, aws: LocalAws, hooks: WebhookReceiver, monkeypatch: pytest.MonkeyPatch,
        log_lines: io.StringIO) -> None:
    from terapi.webhooks import events as webhook_events

    import_connection(app)
    assert hooks.deliveries == []
    depth = boto3.client("sqs").get_queue_attributes(
        QueueUrl=queue_url(), AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    assert depth["ApproximateNumberOfMessages"] == "1"

    class BrokenQueue:
        def send_message_batch(self, **_: Any) -> dict:
            raise ConnectionError("queue unreachable")

    monkeypatch.setattr(webhook_events, "_queue_client", BrokenQueue)
    status, body, _ = app.request("DELETE", f"/connection/user-1?provider_config_key={KEY}")

    assert status == 204, body
    [line] = [json.loads(x) for x in log_lines.getvalue().splitlines() if "publish failed" in x]
    assert line["operation"] == "deletion" and line["error_type"] == "ConnectionError"
    assert line["event_id"].startswith("evt_") and line["level"] == "ERROR"


def test_no_secret_reaches_a_log_line(app: ApiClient, aws: LocalAws, hooks: WebhookReceiver,
                                     oauth: OAuthServer, log_lines: io.StringIO) -> None:
    tokens = oauth.issue_tokens()
    import_connection(app, access_token=tokens["access_token"],
                      refresh_token=tokens["refresh_token"], expires_in=0)
    oauth.fail_token("invalid_grant")
    app.request("GET", f"/auth/token/{KEY}/user-1")
    _, rotated, _ = app.request("POST", "/webhooks/signing-key/rotate")
    hooks.fail_next(1)
    pump(aws)

    text = log_lines.getvalue()
    assert "webhook delivered" in text
    for secret in (tokens["access_token"], tokens["refresh_token"], rotated["signing_key"],
                   signing_key()["previous"], oauth.client_secret):
        assert secret not in text


# Configuration


@pytest.mark.parametrize("url", [
    "http://example.com/hooks", "ftp://example.com/x", "not a url", "https://", "//host/x",
    "http://10.0.0.1/hooks", "http://localhost.example.com/x"])
def test_receivers_outside_the_allowed_schemes_are_refused(app: ApiClient, url: str) -> None:
    status, body, _ = app.request("PUT", "/webhooks/settings", json={"primary_url": url})

    assert status == 400, body
    assert body["error"] == "invalid_webhook_url" and body["message"].startswith("primary_url")


def test_loopback_http_needs_the_development_flag(app: ApiClient,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from terapi.settings import get_settings

    monkeypatch.setenv("TERAPI_ALLOW_LOOPBACK_WEBHOOKS", "false")
    get_settings.cache_clear()
    for url in ("http://127.0.0.1:9/x", "http://localhost/x", "http://[::1]:8080/x"):
        status, body, _ = app.request("PUT", "/webhooks/settings", json={"secondary_url": url})
        assert status == 400 and "TERAPI_ALLOW_LOOPBACK_WEBHOOKS" in body["message"], body
    status, body, _ = app.request("PUT", "/webhooks/settings",
                                  json={"primary_url": "https://hooks.example.com/terapi"})
    assert status == 200 and body["primary_url"] == "https://hooks.example.com/terapi"


def test_configuration_needs_the_secret_key_and_valid_bodies(app: ApiClient) -> None:
    assert app.request("GET", "/webhooks/settings", key=None)[0] == 401
    assert app.request("POST", "/webhooks/signing-key/rotate", key="wrong")[0] == 401
    status, body, _ = app.request("PUT", "/webhooks/settings", json={"primary": "x"})
    assert status == 400 and body["error"] == "invalid_request"
    status, body, _ = app.request("PUT", "/webhooks/connections", json={
        "provider_config_key": KEY, "connection_id": "missing", "webhook_url": None})
    assert status == 404 and body["error"] == "unknown_connection"
    status, body, _ = app.request("GET", "/webhooks/connections?" + urlencode(
        {"provider_config_key": KEY}))
    assert status == 400 and "connection_id" in body["message"]


def test_connection_override_round_trip_with_an_odd_id(app: ApiClient,
                                                      hooks: WebhookReceiver) -> None:
    odd = "team/ünï code?#"
    import_connection(app, odd)
    target = hooks.url + "?tenant=1"
    status, body, _ = app.request("PUT", "/webhooks/connections", json={
        "provider_config_key": KEY, "connection_id": odd, "webhook_url": target})
    assert status == 200, body

    query = urlencode({"provider_config_key": KEY, "connection_id": odd}, quote_via=quote)
    status, body, _ = app.request("GET", f"/webhooks/connections?{query}")

    assert status == 200 and body == {"provider_config_key": KEY, "connection_id": odd,
                                      "webhook_url": target}


# The sample events in events/ run against moto


@pytest.mark.parametrize("name", ["webhooks-get-settings", "webhooks-put-settings",
                                  "webhooks-rotate-signing-key", "webhooks-get-connection",
                                  "webhooks-put-connection"])
def test_sample_api_events_invoke_cleanly(aws: LocalAws, hooks: WebhookReceiver,
                                          name: str) -> None:
    event = json.loads((aws.template.root / "events" / f"{name}.json").read_text())

    reply = FunctionRunner(aws.template).invoke("WebhooksFunction", event)

    assert reply["statusCode"] in (200, 404), reply
    assert "error" not in json.loads(reply["body"]) or reply["statusCode"] == 404


def test_sample_sqs_event_is_delivered(aws: LocalAws, hooks: WebhookReceiver) -> None:
    event = json.loads((aws.template.root / "events" / "webhook-sender-sqs.json").read_text())
    message = json.loads(event["Records"][0]["body"])
    event["Records"][0]["body"] = json.dumps({**message, "url": hooks.url})

    reply = FunctionRunner(aws.template).invoke(SENDER, event)

    assert reply == {"batchItemFailures": []}
    assert [json.loads(d.body)["id"] for d in hooks.accepted()] == [message["event_id"]]
