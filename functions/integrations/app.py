"""Integrations API, and the read-only provider catalog (`/providers`)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from terapi.api import (
    callback_url,
    create_resolver,
    handle,
    json_reply,
    no_content,
    page_limit,
    parse_body,
    query,
)
from terapi.errors import NotFound
from terapi.lazy import lazy_module
from terapi.observability import logger, tracer

integrations = lazy_module("terapi.services.integrations")
models = lazy_module("terapi.models")

app = create_resolver()


@app.post("/integration")
def create_integration() -> Response:
    """Configure a catalog provider for this deployment."""
    reply = integrations.create_integration(parse_body(app, models.CreateIntegrationRequest))
    return json_reply({**reply, "callback_url": callback_url(app)})


@app.get("/integration")
def list_integrations() -> Response:
    """One page of integrations."""
    page = integrations.list_integrations(page_limit(app), query(app, "cursor"))
    url = callback_url(app)
    page["integrations"] = [{**item, "callback_url": url} for item in page["integrations"]]
    return json_reply(page)


@app.get("/integration/<provider_config_key>")
def get_integration(provider_config_key: str) -> Response:
    """One integration, with the callback URL its provider must be configured with."""
    reply = integrations.get_integration(provider_config_key)
    return json_reply({**reply, "callback_url": callback_url(app)})


@app.patch("/integration/<provider_config_key>")
def update_integration(provider_config_key: str) -> Response:
    """Change the OAuth client id, secret or scopes."""
    request = parse_body(app, models.UpdateIntegrationRequest)
    reply = integrations.update_integration(provider_config_key, request)
    return json_reply({**reply, "callback_url": callback_url(app)})


@app.delete("/integration/<provider_config_key>")
def delete_integration(provider_config_key: str) -> Response:
    """Delete an integration with all its connections and secrets."""
    remaining = app.lambda_context.get_remaining_time_in_millis if app.lambda_context else None
    integrations.delete_integration(provider_config_key, remaining)
    return no_content()


@app.get("/providers")
def list_providers() -> Response:
    """Every provider in the catalog."""
    from terapi.catalog import list_providers as catalog

    return json_reply({"providers": [p.to_public_dict() for p in catalog()]})


@app.get("/providers/<name>")
def get_provider(name: str) -> Response:
    """One catalog provider."""
    from terapi.catalog import get_provider as lookup

    provider = lookup(name)
    if provider is None:
        raise NotFound(f"no provider named '{name}' in the catalog", code="unknown_provider")
    return json_reply(provider.to_public_dict())


@app.get("/openapi.json")
def openapi_document() -> Response:
    """This API's OpenAPI document, built from the code."""
    from terapi.openapi import document

    return json_reply(document())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Entry point: secret-key check, then routing."""
    return handle(app, event, context)
