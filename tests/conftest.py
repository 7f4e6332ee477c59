"""Shared fixtures: AWS (moto) provisioned from `template.yaml`, and the API called in-process.

`aws` builds the same tables, secrets and queues `make dev` builds, with the same provisioning
code, inside `moto.mock_aws()`; `api` sends requests through the dev server's own gateway
(routing, HTTP API v2 event, authorizer, handler), minus the socket.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from moto import mock_aws

from devserver import TEMPLATE_PATH, moto_fixes
from devserver.functions import forget_loaded_functions
from devserver.gateway import LocalApi, RawRequest, split_target
from devserver.provision import provision_resources
from devserver.template import Refs, Template, load_template
from tests.support.oauth_server import OAuthServer

SECRET_KEY = "test-secret-key"
PUBLIC_URL = "http://localhost:3003"
moto_fixes.apply()


@dataclass
class LocalAws:
    """What the `aws` fixture provisioned: the API key, the functions' env and the template."""

    secret_key: str
    env: dict[str, str]
    template: Template
    refs: Refs


def _forget_cached_clients() -> None:
    from terapi.aws import reset_clients
    from terapi.settings import get_settings

    reset_clients()
    get_settings.cache_clear()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalAws]:
    """Moto with the template's resources and the functions' environment applied."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "1",
                        "POWERTOOLS_METRICS_NAMESPACE": "Terapi"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        _forget_cached_clients()
        template = load_template(TEMPLATE_PATH, parameter_overrides={"PublicUrl": PUBLIC_URL})
        provisioned = provision_resources(template, secret_key=SECRET_KEY)
        for name, value in provisioned.env.items():
            monkeypatch.setenv(name, value)
        _forget_cached_clients()
        yield LocalAws(SECRET_KEY, provisioned.env, template, provisioned.refs)
    _forget_cached_clients()


class ApiClient:
    """Calls the API like an HTTP client would, through the dev server's gateway, in-process."""

    def __init__(self, api: LocalApi):
        self.local_api = api

    def request(self, method: str, path: str, *, json: Any = None, body: bytes | str = b"",
                headers: dict[str, str] | None = None,
                key: str | None = SECRET_KEY) -> tuple[int, Any, dict[str, str]]:
        """Send one request; `path` is sent as-is (percent-encode ids as a client would).

        Returns the status, the body parsed as JSON (text when it is not JSON) and the reply
        headers with lower-case names. `key=None` sends no Authorization header.
        """
        sent = dict(headers or {})
        if key is not None:
            sent["Authorization"] = f"Bearer {key}"
        data = body.encode() if isinstance(body, str) else body
        if json is not None:
            data = jsonlib.dumps(json).encode()
            sent.setdefault("Content-Type", "application/json")
        reply = self.local_api.handle(RawRequest(method=method, target=path,
                                                 headers=list(sent.items()), body=data))
        self._check_documented(method, path, reply.status)
        text = reply.body.decode("utf-8", "replace")
        try:
            parsed: Any = jsonlib.loads(text) if text else None
        except ValueError:
            parsed = text
        return reply.status, parsed, {k.lower(): v for k, v in reply.headers}


    def _check_documented(self, method: str, target: str, status: int) -> None:
        """Keep the OpenAPI document true: every status a test sees must be declared."""
        from terapi.openapi import find_operation, statuses

        matched = self.local_api.router.match(method.upper(), split_target(target)[0])
        if matched is None:
            assert status == 404, f"{method} {target}: no route, yet {status}"
            return
        route = matched[0]
        operation = find_operation(route.method, route.path)
        assert operation is not None, f"{route.route_key} is not in the OpenAPI document"
        if "default" not in operation.extra or status in (401, 503):
            assert status in statuses(operation), (
                f"{route.route_key} answered {status}, which the OpenAPI document does not list")


@pytest.fixture
def api(aws: LocalAws) -> ApiClient:
    """The template's API, invoked in-process exactly as `make dev` invokes it.

    Every test gets freshly imported functions (a cold start), so no module-level cache, such
    as the authorizer's cached key, leaks from one test into the next.
    """
    forget_loaded_functions()
    return ApiClient(LocalApi(aws.template, domain=PUBLIC_URL.split("//", 1)[1]))


@pytest.fixture
def provider() -> Iterator[OAuthServer]:
    """A real OAuth 2.0 authorization server on loopback, standing in for a provider."""
    with OAuthServer() as server:
        yield server
