"""Every file in `events/` is a usable `sam local invoke` event: each one is invoked here
against moto, through the function the template routes it to, and answers as documented.

The events name a small, fixed world (integrations `github-prod` and `github`, connections
`user-123`, `user-1` and `user-42`), which the test seeds. Nothing leaves loopback: proxy events
get a `Base-Url-Override` to a loopback echo server and the webhook event's target URL is
pointed at a loopback receiver, the only edits made to any event.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devserver.functions import FunctionRunner
from tests.conftest import ApiClient, LocalAws
from tests.support.echo_server import EchoServer
from tests.support.webhook_receiver import WebhookReceiver

EVENTS = Path(__file__).resolve().parents[2] / "events"
HTTP_EXPECTED = {
    "integrations-create": 200, "integrations-list": 200, "integrations-get": 200,
    "integrations-update": 200, "integrations-delete": 204, "providers-list": 200,
    "providers-get": 200, "connections-create": 200, "connections-list": 200,
    "connections-get": 200, "connections-delete": 204, "connections-metadata-patch": 200,
    "connections-metadata-put": 200, "auth-token": 200, "connect-sessions-create": 200,
    "oauth-connect": 401, "oauth-callback": 400, "proxy-get": 200, "proxy-post": 200,
    "webhooks-get-settings": 200, "webhooks-put-settings": 200,
    "webhooks-rotate-signing-key": 200, "webhooks-get-connection": 200,
    "webhooks-put-connection": 200, "openapi-get": 200, "proxy-root": 200,
}


def event_names() -> list[str]:
    return sorted(path.stem for path in EVENTS.glob("*.json"))


def test_every_event_file_has_an_expectation() -> None:
    others = {"authorizer-request", "refresher-schedule", "webhook-sender-sqs"}

    assert set(event_names()) == set(HTTP_EXPECTED) | others


def test_every_route_has_an_event(aws: LocalAws) -> None:
    keys = {json.loads(path.read_text()).get("routeKey") for path in EVENTS.glob("*.json")}

    assert {route.route_key for route in aws.template.routes} <= keys


@pytest.fixture
def world(api: ApiClient) -> ApiClient:
    """The integrations and connections the events refer to."""
    for key in ("github-prod", "github"):
        status, body, _ = api.request("POST", "/integration", json={
            "provider_config_key": key, "provider": "github", "oauth_client_id": "Iv1.example",
            "oauth_client_secret": "example"})
        assert status == 200, body
        for connection_id in ("user-123", "user-1", "user-42"):
            status, body, _ = api.request("POST", "/connection", json={
                "connection_id": connection_id, "provider_config_key": key,
                "credentials": {"access_token": "gho_example",
                                "expires_at": "2999-01-01T00:00:00Z"}})
            assert status == 200, body
    return api


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    with EchoServer() as server:
        yield server


def function_for(aws: LocalAws, event: dict[str, Any]) -> str:
    """The logical id of the function the template routes an HTTP event to."""
    method, route = event["routeKey"].split(" ", 1)
    for http in aws.template.routes:
        if http.path == route and http.method.upper() in (method, "ANY"):
            return http.function
    raise AssertionError(f"no function serves {event['routeKey']}")


@pytest.mark.parametrize("name", sorted(HTTP_EXPECTED))
def test_http_event_answers_as_documented(world: ApiClient, aws: LocalAws, echo: EchoServer,
                                          name: str) -> None:
    event = json.loads((EVENTS / f"{name}.json").read_text())
    if name.startswith("proxy-"):
        event["headers"]["base-url-override"] = echo.url

    reply = FunctionRunner(aws.template).invoke(function_for(aws, event), event)

    assert reply["statusCode"] == HTTP_EXPECTED[name], reply.get("body")
    if name.startswith("oauth-"):
        # Browser routes answer a person: an HTML page that names the error.
        assert reply["headers"]["Content-Type"].startswith("text/html")
        assert "invalid" in reply["body"]
    elif reply["statusCode"] >= 400:
        assert set(json.loads(reply["body"])) == {"error", "message"}


def test_authorizer_event_marks_a_wrong_key_unauthenticated(aws: LocalAws) -> None:
    event = json.loads((EVENTS / "authorizer-request.json").read_text())

    verdict = FunctionRunner(aws.template).invoke("AuthorizerFunction", event)

    assert verdict == {"isAuthorized": True, "context": {"authenticated": False}}


def test_schedule_event_runs_the_refresher(world: ApiClient, aws: LocalAws) -> None:
    event = json.loads((EVENTS / "refresher-schedule.json").read_text())

    summary = FunctionRunner(aws.template).invoke("RefresherFunction", event)

    assert summary == {"due": 0, "refreshed": 0, "failed": 0, "skipped": 0}


def test_sqs_event_is_delivered_by_the_webhook_sender(aws: LocalAws) -> None:
    event = json.loads((EVENTS / "webhook-sender-sqs.json").read_text())
    with WebhookReceiver() as receiver:
        for record in event["Records"]:
            message = json.loads(record["body"])
            message["url"] = receiver.url
            record["body"] = json.dumps(message)

        result = FunctionRunner(aws.template).invoke("WebhookSenderFunction", event)

        assert result == {"batchItemFailures": []}
        delivered = [d.headers["terapi-event-id"] for d in receiver.accepted()]
        assert delivered == ["evt_0f8fad5bd9cb469fa16570867728950e"]
