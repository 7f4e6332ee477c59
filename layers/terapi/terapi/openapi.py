"""The API's own OpenAPI document, built from the code: the operations declared here, request
schemas generated from the pydantic models that validate them, and the error shape.

It is kept true by the tests: every route in `template.yaml` must be declared here (and nothing
else), and every status any test observes through the API must be listed for its operation.
`GET /openapi.json` serves it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

KEY = "provider_config_key"
# Every route behind the secret key can answer these besides its own statuses.
AUTHENTICATED = (401, 503)

_STATUS_TEXT = {
    200: "OK", 204: "Deleted", 302: "Redirect to the provider or the session's URL",
    400: "Invalid request", 401: "Missing or wrong secret key, or connect session",
    403: "Integration not allowed", 404: "Not found", 409: "Conflict",
    413: "Request too large", 424: "The connection's credentials are invalid",
    502: "The provider failed", 503: "An AWS dependency failed, or a refresh is busy or cooling",
    504: "The provider timed out",
}


@dataclass(frozen=True)
class Operation:
    """One route: its reply schema, request model and every status it can answer."""

    method: str
    path: str
    summary: str
    tag: str
    statuses: tuple[int, ...]
    reply: str | None = None
    request_model: str | None = None
    query: tuple[str, ...] = ()
    public: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


OPERATIONS = (
    Operation("POST", "/integration", "Create an integration", "Integrations",
              (200, 400, 409), "Integration", "terapi.models:CreateIntegrationRequest"),
    Operation("GET", "/integration", "List integrations", "Integrations", (200, 400),
              "IntegrationList", query=("limit", "cursor")),
    Operation("GET", "/integration/{provider_config_key}", "Get an integration", "Integrations",
              (200, 404), "Integration"),
    Operation("PATCH", "/integration/{provider_config_key}", "Change the OAuth client",
              "Integrations", (200, 400, 404), "Integration",
              "terapi.models:UpdateIntegrationRequest"),
    Operation("DELETE", "/integration/{provider_config_key}", "Delete an integration",
              "Integrations", (204, 404)),
    Operation("GET", "/providers", "List catalog providers", "Providers", (200,), "Object"),
    Operation("GET", "/providers/{name}", "Get a catalog provider", "Providers", (200, 404),
              "Object"),
    Operation("POST", "/connection", "Import credentials as a connection", "Connections",
              (200, 400, 404, 502), "Connection", "terapi.models:CreateConnectionRequest"),
    Operation("GET", "/connection", "List connections", "Connections", (200, 400),
              "ConnectionList", query=(KEY, "connection_id", "limit", "cursor")),
    Operation("GET", "/connection/{connection_id+}", "Get a connection", "Connections",
              (200, 400, 404), "Connection", query=(KEY,)),
    Operation("DELETE", "/connection/{connection_id+}", "Delete a connection", "Connections",
              (204, 400, 404), query=(KEY,)),
    Operation("PATCH", "/connection/{connection_id+}", "Merge metadata (path ends /metadata)",
              "Connections", (200, 400, 404), "Connection", "Object", query=(KEY,)),
    Operation("PUT", "/connection/{connection_id+}", "Replace metadata (path ends /metadata)",
              "Connections", (200, 400, 404), "Connection", "Object", query=(KEY,)),
    Operation("GET", "/auth/token/{provider_config_key}/{connection_id+}",
              "A valid token for a connection", "Authentication", (200, 400, 404, 424, 502),
              "AuthToken", query=("force_refresh",)),
    Operation("POST", "/connect/sessions", "Open a connect session", "Connect", (200, 400),
              "Object", "terapi.services.connect:CreateConnectSessionRequest"),
    Operation("GET", "/oauth/connect/{provider_config_key}", "Start the OAuth flow (browser)",
              "Connect", (302, 400, 401, 403, 404, 502, 503), query=("connect_session_token",),
              public=True),
    Operation("GET", "/oauth/callback", "The provider's redirect (browser)", "Connect",
              (200, 302, 400, 401, 403, 404, 502, 503),
              query=("code", "state", "error", "oauth_token", "oauth_verifier", "denied"),
              public=True),
    *(Operation("ANY", path, "Call the provider's API with the connection's credentials; "
                "any status of the provider passes through", "Proxy",
                (400, 404, 413, 424, 502, 504), extra={"default": "The provider's own reply"})
      for path in ("/proxy", "/proxy/{proxy+}")),
    Operation("GET", "/webhooks/settings", "Webhook URLs and key rotation state", "Webhooks",
              (200,), "Object"),
    Operation("PUT", "/webhooks/settings", "Set the webhook URLs", "Webhooks", (200, 400),
              "Object", "terapi.webhooks.config:WebhookSettingsRequest"),
    Operation("POST", "/webhooks/signing-key/rotate", "Rotate the signing key (shown once)",
              "Webhooks", (200, 409), "Object"),
    Operation("GET", "/webhooks/connections", "A connection's webhook override", "Webhooks",
              (200, 400, 404), "Object", query=(KEY, "connection_id")),
    Operation("PUT", "/webhooks/connections", "Set a connection's webhook override",
              "Webhooks", (200, 400, 404), "Object",
              "terapi.webhooks.config:ConnectionWebhookRequest"),
    Operation("GET", "/openapi.json", "This document", "Meta", (200,), "Object"),
)

_REPLIES: dict[str, Any] = {
    "Object": {"type": "object", "additionalProperties": True},
    "Error": {"type": "object", "required": ["error", "message"],
              "properties": {"error": {"type": "string"}, "message": {"type": "string"}}},
    "Credentials": {"type": "object", "description": "Credential status; never a value.",
                    "properties": {
                        "type": {"type": "string",
                                 "enum": ["oauth2", "oauth1", "api_key", "basic", "custom"]},
                        "expires_at": {"type": "string", "format": "date-time",
                                       "nullable": True},
                        "status": {"type": "string", "enum": ["valid", "invalid"]},
                        "last_refreshed_at": {"type": "string", "format": "date-time",
                                              "nullable": True},
                        "error": {"type": "string"}}},
    "Connection": {"type": "object", "required": ["id", KEY, "provider"], "properties": {
        "id": {"type": "string"}, KEY: {"type": "string"}, "provider": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "metadata": {"type": "object", "additionalProperties": True},
        "connection_config": {"type": "object", "additionalProperties": {"type": "string"}},
        "end_user": {"type": "object", "additionalProperties": True},
        "credentials": {"$ref": "#/components/schemas/Credentials"}}},
    "ConnectionList": {"type": "object", "properties": {
        "connections": {"type": "array", "items": {"$ref": "#/components/schemas/Connection"}},
        "next_cursor": {"type": "string", "nullable": True}}},
    "Integration": {"type": "object", "properties": {
        "unique_key": {"type": "string"}, "provider": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "connection_count": {"type": "integer"}, "oauth_client_id": {"type": "string"},
        "oauth_scopes": {"type": "string"}, "has_oauth_client_secret": {"type": "boolean"},
        "callback_url": {"type": "string"}}},
    "IntegrationList": {"type": "object", "properties": {
        "integrations": {"type": "array", "items": {"$ref": "#/components/schemas/Integration"}},
        "next_cursor": {"type": "string", "nullable": True}}},
    "AuthToken": {"type": "object", "description": "By design, the one reply with credentials.",
                  "properties": {"type": {"type": "string"}, "access_token": {"type": "string"},
                                 "expires_at": {"type": "string", "format": "date-time",
                                                "nullable": True},
                                 "raw": {"type": "object", "additionalProperties": True}}},
}


def statuses(operation: Operation) -> tuple[int, ...]:
    """Every status an operation can answer, the secret-key ones included."""
    extra = () if operation.public else AUTHENTICATED
    return tuple(sorted({*operation.statuses, *extra}))


def find_operation(method: str, path: str) -> Operation | None:
    """The operation declared for a template route key (`ANY` matches every method)."""
    for operation in OPERATIONS:
        if operation.path == path and operation.method in (method, "ANY"):
            return operation
    return None


def _model_schema(reference: str, schemas: dict[str, Any]) -> dict[str, Any]:
    if ":" not in reference:
        return {"$ref": f"#/components/schemas/{reference}"}
    import importlib

    module, name = reference.split(":")
    model = getattr(importlib.import_module(module), name)
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(schema.pop("$defs", {}))
    schemas[name] = schema
    return {"$ref": f"#/components/schemas/{name}"}


def _operation(operation: Operation, schemas: dict[str, Any]) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status in statuses(operation):
        reply: dict[str, Any] = {"description": _STATUS_TEXT[status]}
        if status >= 400:
            reply["content"] = {"application/json": {
                "schema": {"$ref": "#/components/schemas/Error"}}}
        elif status == 200 and operation.reply:
            reply["content"] = {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{operation.reply}"}}}
        responses[str(status)] = reply
    if "default" in operation.extra:
        responses["default"] = {"description": operation.extra["default"]}
    parameters = [{"name": name.rstrip("+"), "in": "path", "required": True,
                   "schema": {"type": "string"}}
                  for name in _path_names(operation.path)]
    parameters += [{"name": name, "in": "query", "schema": {"type": "string"}}
                   for name in operation.query]
    document: dict[str, Any] = {"summary": operation.summary, "tags": [operation.tag],
                                "responses": responses}
    if parameters:
        document["parameters"] = parameters
    if operation.request_model:
        document["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": _model_schema(operation.request_model, schemas)}}}
    if operation.public:
        document["security"] = []
    return document


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


@cache
def document() -> dict[str, Any]:
    """The OpenAPI 3.0 document of this deployment's API."""
    schemas: dict[str, Any] = dict(_REPLIES)
    paths: dict[str, Any] = {}
    for operation in OPERATIONS:
        path = operation.path.replace("+}", "}")
        methods = ["get", "post", "put", "patch", "delete"] if operation.method == "ANY" else [
            operation.method.lower()]
        for method in methods:
            paths.setdefault(path, {})[method] = _operation(operation, schemas)
    return {
        "openapi": "3.0.3",
        "info": {"title": "Terapi API", "version": "1.0",
                 "description": "Self-hosted integration connections: OAuth, credentials in "
                                "Secrets Manager, always-valid tokens, a proxy and webhooks."},
        "security": [{"SecretKey": []}],
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {"SecretKey": {
            "type": "http", "scheme": "bearer",
            "description": "The deployment's secret key: Authorization: Bearer <key>"}}},
    }
