"""Proxy API: `ANY /proxy/{path}` calls the provider's API as a connection, credentials injected.

The behaviour (headers, retries, limits, status codes) is described in `terapi.services.proxy`.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from terapi.api import create_resolver, handle, raw_body
from terapi.lazy import lazy_module
from terapi.observability import logger, metrics, tracer

proxy = lazy_module("terapi.services.proxy")

app = create_resolver()
PREFIX = "/proxy"
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


@app.route(f"{PREFIX}(/.*)?", method=METHODS)
def forward() -> Response:
    """Forward the request to the provider and return its status, headers and body unchanged."""
    event = app.current_event
    request = proxy.ProxyRequest(method=event.http_method, path=event.path[len(PREFIX):],
                                 raw_query=event.raw_query_string, headers=dict(event.headers),
                                 body=raw_body(app), cookies=list(event.cookies or []))
    remaining = app.lambda_context.get_remaining_time_in_millis if app.lambda_context else None
    reply = proxy.forward(request, remaining)
    # Header names stay lower case: Powertools would re-serialise a bytes body it took for JSON
    # under a `Content-Type` key, and HTTP API responses are case-insensitive anyway.
    return Response(status_code=reply.status, headers=reply.headers, body=reply.body,
                    cookies=reply.cookies)  # type: ignore[arg-type]


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Entry point: count the request (refused ones too), check the secret key, proxy the call."""
    metrics.add_metric(name="ProxyRequests", unit=MetricUnit.Count, value=1)
    return handle(app, event, context)
