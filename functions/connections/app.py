"""Connections API: import, list, read and delete connections, and edit their metadata.

Connection ids may hold any character, slashes included, so the connection routes are greedy
(`/connection/{connection_id+}`) and the id is everything after `/connection/`.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from terapi.api import (
    create_resolver,
    handle,
    json_body,
    json_reply,
    no_content,
    page_limit,
    parse_body,
    path_remainder,
    query,
)
from terapi.lazy import lazy_module
from terapi.observability import logger, tracer

connections = lazy_module("terapi.services.connections")
models = lazy_module("terapi.models")

app = create_resolver()
PREFIX = "/connection/"
METADATA = "/metadata"


@app.post("/connection")
def create_connection() -> Response:
    """Import credentials as a new connection, or replace an existing connection's."""
    request = parse_body(app, models.CreateConnectionRequest)
    return json_reply(connections.import_connection(request))


@app.get("/connection")
def list_connections() -> Response:
    """One page of connections, optionally filtered by integration and connection id."""
    page = connections.list_connections(
        query(app, "provider_config_key"), query(app, "connection_id"), page_limit(app),
        query(app, "cursor"))
    return json_reply(page)


@app.route("/connection/.+/metadata", method=["PATCH", "PUT"])
def update_metadata() -> Response:
    """PATCH merges the given keys into the metadata; PUT replaces it."""
    connection_id = path_remainder(app, PREFIX, METADATA)
    merge = app.current_event.http_method == "PATCH"
    reply = connections.update_metadata(query(app, "provider_config_key", required=True),
                                        connection_id, json_body(app), merge=merge)
    return json_reply(reply)


@app.get("/connection/.+")
def get_connection() -> Response:
    """One connection, with credential status but no credential values."""
    reply = connections.get_connection(query(app, "provider_config_key", required=True),
                                       path_remainder(app, PREFIX))
    return json_reply(reply)


@app.delete("/connection/.+")
def delete_connection() -> Response:
    """Delete a connection and its stored credentials."""
    connections.delete_connection(query(app, "provider_config_key", required=True),
                                  path_remainder(app, PREFIX))
    return no_content()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Entry point: secret-key check, then routing."""
    return handle(app, event, context)
