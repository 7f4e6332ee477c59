"""OAuth function: connect sessions (secret key) and the browser-facing connect and callback.

`POST /connect/sessions` lives here rather than in a function of its own: it shares the session
store and this function's role, and one warm container then serves the whole flow. Only the
`/oauth/` routes are public; they authenticate with the connect-session token or the state.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from terapi.api import (
    callback_url,
    create_resolver,
    handle,
    json_reply,
    parse_body,
    public_base_url,
)
from terapi.lazy import lazy_module
from terapi.observability import logger, tracer

connect = lazy_module("terapi.services.connect")
oauth_pages = lazy_module("terapi.oauth_pages")

app = create_resolver()
PUBLIC_PATHS = ("/oauth/",)


@app.post("/connect/sessions")
def create_connect_session() -> Response:
    """Open a connect session for one end user; the token is shown once."""
    request = parse_body(app, connect.CreateConnectSessionRequest)
    return json_reply(connect.create_session(request, public_base_url(app)))


@app.get("/oauth/connect/<provider_config_key>")
def start_authorization(provider_config_key: str) -> Response:
    """Redirect the end user's browser to the provider's consent screen."""
    event = app.current_event
    try:
        url = connect.start_authorization(provider_config_key,
                                          dict(event.query_string_parameters or {}),
                                          callback_url(app))
    except connect.FlowError as exc:
        return oauth_pages.failure_reply(exc, oauth_pages.wants_json(event.headers))
    return oauth_pages.redirect_reply(url)


@app.get("/oauth/callback")
def complete_authorization() -> Response:
    """Exchange the provider's code, store the connection and report the outcome."""
    event = app.current_event
    json_wanted = oauth_pages.wants_json(event.headers)
    try:
        result = connect.complete_authorization(dict(event.query_string_parameters or {}))
    except connect.FlowError as exc:
        return oauth_pages.failure_reply(exc, json_wanted)
    return oauth_pages.success_reply(result, json_wanted)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Entry point: secret-key check (except on the public /oauth/ routes), then routing."""
    return handle(app, event, context, public_paths=PUBLIC_PATHS)
