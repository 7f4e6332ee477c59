"""Auth API: `GET /auth/token/{provider_config_key}/{connection_id}`, a token valid right now.

The connection id is the rest of the path (ids may contain slashes).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from terapi.api import create_resolver, flag, handle, json_reply
from terapi.errors import InvalidRequest
from terapi.lazy import lazy_module
from terapi.observability import logger, metrics, tracer

tokens = lazy_module("terapi.services.tokens")

app = create_resolver()
PREFIX = "/auth/token/"


@app.get("/auth/token/.+")
def get_token() -> Response:
    """The connection's credentials, refreshed first when they expire within the margin."""
    provider_config_key, _, connection_id = app.current_event.path[len(PREFIX):].partition("/")
    if not provider_config_key or not connection_id:
        raise InvalidRequest("the path must be /auth/token/{provider_config_key}/{connection_id}")
    reply = tokens.get_token(provider_config_key, connection_id,
                             force_refresh=flag(app, "force_refresh"))
    return json_reply(reply)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Entry point: secret-key check, then routing."""
    return handle(app, event, context)
