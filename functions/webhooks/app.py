"""Webhooks configuration API: the deployment's URLs, per-connection overrides, key rotation.

Every route needs the secret key. Connection ids may hold any character, so the per-connection
override is addressed in the body (PUT) or the query string (GET), not in the path.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from terapi.api import create_resolver, handle, json_reply, parse_body, query
from terapi.observability import logger, tracer
from terapi.webhooks import config

app = create_resolver()


@app.get("/webhooks/settings")
def get_settings() -> Response:
    """The webhook URLs and the signing key's rotation state (never the key)."""
    return json_reply(config.get_webhook_settings())


@app.put("/webhooks/settings")
def put_settings() -> Response:
    """Replace the primary and secondary URLs."""
    request = parse_body(app, config.WebhookSettingsRequest)
    return json_reply(config.update_webhook_settings(request))


@app.post("/webhooks/signing-key/rotate")
def rotate_signing_key() -> Response:
    """Make a new signing key current and return it, once; the old one signs for 24 hours."""
    return json_reply(config.rotate_signing_key())


@app.get("/webhooks/connections")
def get_connection_webhook() -> Response:
    """One connection's webhook override."""
    reply = config.get_connection_webhook(query(app, "provider_config_key", required=True),
                                          query(app, "connection_id", required=True))
    return json_reply(reply)


@app.put("/webhooks/connections")
def put_connection_webhook() -> Response:
    """Set or remove one connection's webhook override."""
    request = parse_body(app, config.ConnectionWebhookRequest)
    return json_reply(config.set_connection_webhook(request))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Entry point: secret-key check, then routing."""
    return handle(app, event, context)
