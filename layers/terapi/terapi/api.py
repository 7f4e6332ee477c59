"""HTTP plumbing shared by the API functions: the resolver, the secret-key check, body parsing,
and the one place where errors become `{"error", "message"}` replies.

The authorizer never rejects at the gateway (an HTTP API could only answer with its own
`{"message"}` body); it marks the request authenticated or not, and `handle` refuses the
unauthenticated ones here with a proper 401. Browser-facing routes opt out explicitly.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from pydantic_core import ValidationError

from terapi.errors import InvalidRequest, TerapiError, Unauthorized
from terapi.observability import logger
from terapi.settings import get_settings

Model = TypeVar("Model")
MAX_PAGE = 100


def error_reply(status: int, code: str, message: str) -> Response:
    """The API's single error shape."""
    return Response(status_code=status, content_type="application/json",
                    body=json.dumps({"error": code, "message": message}))


def json_reply(body: Any, status: int = 200) -> Response:
    """A JSON reply with an explicit status."""
    return Response(status_code=status, content_type="application/json", body=json.dumps(body))


def no_content() -> Response:
    """A 204 reply with no body."""
    return Response(status_code=204, content_type=None, body="")


def validation_message(exc: ValidationError, prefix: str = "") -> str:
    """Name the first offending field and say what is wrong with it."""
    first = exc.errors()[0]
    parts = [*(prefix.split(".") if prefix else []), *first["loc"]]
    field = ".".join(str(part) for part in parts)
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "is not a known field"
    elif first["type"] == "missing":
        message = "is required"
    return f"{field}: {message}" if field else message


def create_resolver() -> APIGatewayHttpResolver:
    """A resolver whose every failure becomes `{"error", "message"}` with the right status."""
    app = APIGatewayHttpResolver()

    @app.exception_handler(TerapiError)
    def _domain_error(exc: TerapiError) -> Response:
        logger.info("request refused", error=exc.code, status=exc.status)
        return error_reply(exc.status, exc.code, exc.message)

    @app.exception_handler(ValidationError)
    def _invalid(exc: ValidationError) -> Response:
        logger.info("request invalid", error="invalid_request")
        return error_reply(400, "invalid_request", validation_message(exc))

    @app.not_found
    def _no_route(_: NotFoundError) -> Response:
        event = app.current_event
        return error_reply(404, "not_found", f"no route for {event.http_method} {event.path}")

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response:
        if _is_aws_failure(exc):
            logger.warning("aws dependency failed", error_type=type(exc).__name__,
                           aws_error=getattr(exc, "response", {}).get("Error", {}).get("Code"))
            return error_reply(503, "service_unavailable",
                               "a storage dependency failed; the request changed nothing and "
                               "can be retried")
        logger.exception("unexpected failure", error_type=type(exc).__name__)
        return error_reply(500, "internal_error", "an unexpected error occurred")

    return app


def _is_aws_failure(exc: Exception) -> bool:
    # botocore wraps its own transport errors, so a bare urllib3 error is a provider call's.
    return type(exc).__module__.startswith("botocore")


def handle(app: APIGatewayHttpResolver, event: dict[str, Any], context: Any, *,
           public_paths: tuple[str, ...] = ()) -> dict[str, Any]:
    """Check the secret key (unless the path is public) and resolve the request."""
    path = event.get("rawPath", "")
    if not path.startswith(public_paths) or not public_paths:
        authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
        verdict = (authorizer.get("lambda") or {}).get("authenticated")
        if verdict not in (True, "true"):
            error = Unauthorized("missing or wrong secret key: send 'Authorization: Bearer "
                                 "<secret key>'")
            logger.info("request refused", error=error.code, status=error.status)
            reply = error_reply(error.status, error.code, error.message)
            return {"statusCode": reply.status_code, "body": reply.body,
                    "headers": {"Content-Type": "application/json"}}
    return app.resolve(event, context)


def raw_body(app: APIGatewayHttpResolver) -> bytes:
    """The request body as bytes, decoded from base64 when the gateway encoded it."""
    event = app.current_event
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return base64.b64decode(body)
    return body.encode("utf-8", "surrogatepass")


def json_body(app: APIGatewayHttpResolver) -> Any:
    """The request body parsed as JSON; malformed JSON is a 400."""
    data = raw_body(app)
    if not data.strip():
        raise InvalidRequest("request body is required and must be a JSON object",
                             code="invalid_json")
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest("request body is not valid JSON", code="invalid_json") from exc


def parse_body(app: APIGatewayHttpResolver, model: type[Model]) -> Model:
    """Parse and validate the JSON body against a request model (a pydantic model class)."""
    payload = json_body(app)
    if not isinstance(payload, dict):
        raise InvalidRequest("request body must be a JSON object", code="invalid_json")
    return model.model_validate(payload)  # type: ignore[attr-defined]


def query(app: APIGatewayHttpResolver, name: str, *, required: bool = False) -> str | None:
    """A query parameter, or a 400 naming it when a required one is absent."""
    value = app.current_event.get_query_string_value(name)
    if required and not value:
        raise InvalidRequest(f"{name}: query parameter is required")
    return value


def page_limit(app: APIGatewayHttpResolver) -> int:
    """The `limit` query parameter: 1 to 100, default 100."""
    text = query(app, "limit")
    if text is None:
        return MAX_PAGE
    if not text.isdigit() or not 1 <= int(text) <= MAX_PAGE:
        raise InvalidRequest(f"limit: must be an integer from 1 to {MAX_PAGE}")
    return int(text)


def flag(app: APIGatewayHttpResolver, name: str) -> bool:
    """A boolean query parameter (`true`/`false`, `1`/`0`); anything else is a 400."""
    text = (query(app, name) or "false").lower()
    if text not in ("true", "false", "1", "0"):
        raise InvalidRequest(f"{name}: must be true or false")
    return text in ("true", "1")


def public_base_url(app: APIGatewayHttpResolver) -> str:
    """The URL this API is reached at: `TERAPI_PUBLIC_URL`, else the request's own host.

    The template cannot pass the API's URL to its own functions (that would be a dependency
    cycle), so the request tells us where we are.
    """
    configured = get_settings().public_url
    if configured:
        return configured.rstrip("/")
    event = app.current_event
    scheme = event.headers.get("x-forwarded-proto", "https")
    return f"{scheme}://{event.request_context.domain_name}"


def callback_url(app: APIGatewayHttpResolver) -> str:
    """The OAuth redirect URI providers must be configured with."""
    return f"{public_base_url(app)}/oauth/callback"


def path_remainder(app: APIGatewayHttpResolver, prefix: str, suffix: str = "") -> str:
    """The part of the (gateway-decoded) path between `prefix` and `suffix`: a connection id.

    HTTP APIs deliver the path already percent-decoded, so ids with slashes, spaces or emoji
    arrive verbatim and are taken as they are.
    """
    path = app.current_event.path
    end = len(path) - len(suffix) if suffix else len(path)
    return path[len(prefix):end]


Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
