"""The hosted OAuth flow: connect sessions, the redirect to the provider, and the callback.

Decisions, for an operator reading this:
- A connect session token (`tcs_` + 32 random bytes) is the end user's only credential; only
  its SHA-256 is stored. It lives `ttl_seconds` (default 30 minutes) and may start several
  attempts until then, so a user who cancels at the consent screen can try again.
- Each attempt gets its own `state` (32 random bytes, stored hashed) bound to the session, the
  integration, its OAuth client and the redirect URI. It expires after 10 minutes (or with its
  session, if sooner) and is consumed by one conditional write: a replay, even a concurrent one,
  finds it used. A failure after consumption needs a new attempt from the connect link.
- PKCE S256 is used unless the provider sets `pkce: false`; the verifier sits on the state item
  only until the callback consumes it.
- OAuth 1.0a providers (`auth_mode: oauth1`) get the three-legged flow: the connect route asks
  `request_token_url` for a request token (HMAC-SHA1, `oauth_callback` = the callback URL) and
  stores the attempt under the hash of that token, since the callback carries `oauth_token`, not
  `state`. The request token's secret sits on the state item (10 minutes at most, single use,
  removed on consumption, like the PKCE verifier); the callback signs the exchange at
  `token_url` with it and the `oauth_verifier`. `denied=` (a cancel) is `authorization_denied`.
- Statuses: a missing, unknown or expired session token is 401; a bad, replayed, expired or
  mismatched state is 400; an integration the session does not allow is 403; a provider
  `error=` is 400 `authorization_denied`; a code (or request token) the token endpoint refuses is
  400 `token_exchange_failed`, and a token endpoint that is down or times out is 502.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from terapi.errors import InvalidRequest, NotFound, TerapiError
from terapi.models import ConnectionId, ProviderConfigKey, iso, utc_now
from terapi.oauth1 import OAuth1Keys, fetch_access_token, fetch_request_token
from terapi.oauth2 import TokenError, TokenSet, post_token_request
from terapi.observability import logger
from terapi.services.connections import CredentialWrite, encode_metadata, write_credentials
from terapi.services.integrations import client_secret, provider_for
from terapi.services.verification import (
    oauth_client_for,
    render,
    requested_scopes,
    token_failure,
)
from terapi.store.integrations import IntegrationStore
from terapi.store.sessions import (
    ConnectSessionRecord,
    OAuthStateRecord,
    SessionStore,
    StateNotConsumable,
    token_hash,
)

SESSION_TOKEN_PREFIX = "tcs_"  # noqa: S105 - a recognisable prefix for secret scanners
STATE_TTL_SECONDS = 600
DEFAULT_SESSION_TTL = 1800
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_ALLOWED_INTEGRATIONS = 50
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=255)]


def _check_url(value: str | None, *, origin_only: bool) -> str | None:
    """https anywhere, http only to loopback; an origin has nothing after the host and port."""
    if value is None:
        return None
    parts = urlsplit(value)
    secure = parts.scheme == "https" or (parts.scheme == "http"
                                         and parts.hostname in LOOPBACK_HOSTS)
    if not secure or not parts.hostname or "@" in parts.netloc or len(value) > 2048:
        raise ValueError("must be an https URL (http is allowed for loopback hosts only)")
    if re.search(r"\s", value) or parts.fragment or value.endswith("#"):
        raise ValueError("must not contain whitespace or a #fragment")
    if origin_only and (parts.path not in ("", "/") or parts.query or value.endswith("?")):
        raise ValueError("must be an origin: scheme://host[:port] with no path")
    return value.rstrip("/") if origin_only else value


class EndUser(BaseModel):
    """The person connecting, as the application knows them; stored on the connection."""

    model_config = ConfigDict(extra="forbid", strict=True, hide_input_in_errors=True)

    id: ShortText
    email: Annotated[str, StringConstraints(max_length=320)] | None = None
    display_name: Annotated[str, StringConstraints(max_length=255)] | None = None


class CreateConnectSessionRequest(BaseModel):
    """`POST /connect/sessions`: who may connect what, and where the browser goes afterwards.

    `origin` is the web origin of the page that opens the popup; the result page posts its
    message to that origin only (to `*` when absent, which is safe because the message never
    holds a credential).
    """

    model_config = ConfigDict(extra="forbid", strict=True, hide_input_in_errors=True)

    connection_id: ConnectionId | None = None
    end_user: EndUser | None = None
    allowed_integrations: list[ProviderConfigKey] = Field(
        min_length=1, max_length=MAX_ALLOWED_INTEGRATIONS)
    metadata: dict[str, Any] | None = None
    success_url: str | None = None
    error_url: str | None = None
    origin: str | None = None
    webhook_url: str | None = None
    ttl_seconds: int = Field(default=DEFAULT_SESSION_TTL, ge=60, le=86400)

    @field_validator("success_url", "error_url")
    @classmethod
    def _redirect_url(cls, value: str | None) -> str | None:
        return _check_url(value, origin_only=False)

    @field_validator("origin")
    @classmethod
    def _origin(cls, value: str | None) -> str | None:
        return _check_url(value, origin_only=True)

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        from terapi.webhooks.config import validate_webhook_url

        return validate_webhook_url(value) if value is not None else None


class IntegrationNotAllowed(TerapiError):
    """The connect session does not allow this integration."""

    status = 403
    code = "integration_not_allowed"


class InvalidConnectSession(TerapiError):
    """The connect session token is missing, unknown or expired."""

    status = 401
    code = "invalid_connect_session"


class InvalidState(TerapiError):
    """The OAuth state is missing, unknown, replayed, expired or no longer matches."""

    status = 400
    code = "invalid_state"


@dataclass(frozen=True)
class FlowContext:
    """What the result page or redirect may say about an attempt; nothing in it is secret."""

    connection_id: str | None = None
    provider_config_key: str | None = None
    success_url: str | None = None
    error_url: str | None = None
    origin: str | None = None


class FlowError(TerapiError):
    """A browser-flow failure with the context needed to report it to the right place."""

    def __init__(self, error: TerapiError, context: FlowContext | None = None):
        super().__init__(error.message, code=error.code, status=error.status)
        self.context = context or FlowContext()


@dataclass(frozen=True)
class FlowResult:
    """A completed authorization: the stored connection (as the API shows it) and its context."""

    connection: dict[str, Any]
    context: FlowContext


def create_session(request: CreateConnectSessionRequest, public_base_url: str) -> dict[str, Any]:
    """Open a connect session; the token is returned once and stored only as its hash."""
    allowed = list(dict.fromkeys(request.allowed_integrations))
    integrations = IntegrationStore()
    for key in allowed:
        try:
            integrations.get(key)
        except NotFound:
            raise InvalidRequest(f"allowed_integrations: no integration with provider_config_key "
                                 f"'{key}'", code="unknown_integration") from None
    token = SESSION_TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = int(time.time()) + request.ttl_seconds
    record = ConnectSessionRecord(
        token_hash=token_hash(token),
        connection_id=request.connection_id or f"conn_{uuid.uuid4().hex}",
        allowed_integrations_json=json.dumps(allowed),
        metadata_json=encode_metadata(request.metadata) if request.metadata is not None else None,
        end_user_json=request.end_user.model_dump_json(exclude_none=True)
        if request.end_user else None,
        created_at=iso(utc_now()) or "",
        expires_at=expires_at,
        success_url=request.success_url,
        error_url=request.error_url,
        origin=request.origin,
        webhook_url=request.webhook_url,
    )
    SessionStore().put_session(record)
    logger.info("connect session created", integrations=len(allowed),
                ttl_seconds=request.ttl_seconds)
    target = quote(allowed[0], safe="") if len(allowed) == 1 else "{provider_config_key}"
    return {
        "token": token,
        "expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires_at)),
        "connect_link": f"{public_base_url}/oauth/connect/{target}?"
                        f"{urlencode({'connect_session_token': token})}",
        "connection_id": record.connection_id,
        "allowed_integrations": allowed,
    }


def start_authorization(provider_config_key: str, params: dict[str, str],
                        redirect_uri: str) -> str:
    """Check the session and build the provider's authorization URL with a fresh state.

    `params` are the connect route's query parameters: the session token, plus any connection
    config the provider needs (`?subdomain=acme`). Raises `FlowError`.
    """
    session = _active_session(params.get("connect_session_token"))
    context = _context(session, provider_config_key)
    try:
        if provider_config_key not in json.loads(session.allowed_integrations_json):
            raise IntegrationNotAllowed(f"this connect session does not allow integration "
                                        f"'{provider_config_key}'")
        integration = IntegrationStore().get(provider_config_key)
        provider = provider_for(integration)
        if provider.auth_mode not in ("oauth2", "oauth1"):
            raise InvalidRequest(f"integration '{provider_config_key}' uses {provider.auth_mode}; "
                                 "only oauth2 and oauth1 integrations connect through the "
                                 "browser (create the others with POST /connection)",
                                 code="unsupported_auth_mode")
        config = _connection_config(provider.connection_config_params, params)
        start = _start_oauth1 if provider.auth_mode == "oauth1" else _start_oauth2
        url = start(session, integration, provider, config, redirect_uri)
    except TerapiError as exc:
        _log_refusal("connect", exc, provider_config_key)
        raise FlowError(exc, context) from None
    logger.info("oauth authorization started", provider_config_key=provider_config_key,
                auth_mode=provider.auth_mode,
                pkce=provider.pkce and provider.auth_mode == "oauth2")
    return url


def _start_oauth2(session: ConnectSessionRecord, integration: Any, provider: Any,
                  config: dict[str, str], redirect_uri: str) -> str:
    """Store a fresh state (and PKCE verifier); the consent screen's URL."""
    authorization_url = render(provider.authorization_url or "", config, "authorization_url")
    client = oauth_client_for(integration, provider, config)
    state = secrets.token_urlsafe(32)
    query, verifier = _authorization_query(integration, provider, config,
                                           client_id=client.client_id,
                                           redirect_uri=redirect_uri, state=state)
    SessionStore().put_state(_state_record(session, integration, client.client_id, config,
                                           redirect_uri, state_hash=token_hash(state),
                                           code_verifier=verifier))
    return add_query(authorization_url, query)


def _start_oauth1(session: ConnectSessionRecord, integration: Any, provider: Any,
                  config: dict[str, str], redirect_uri: str) -> str:
    """Get a request token, store it as the attempt's state; the consent screen's URL."""
    consumer_key, consumer_secret = _consumer(integration)
    authorization_url = render(provider.authorization_url or "", config, "authorization_url")
    query: dict[str, str] = {}
    scopes = requested_scopes(integration, provider)
    if scopes:
        query[provider.scope_param] = scopes
    for name, value in provider.authorization_params.items():
        query[name] = render(value, config, f"authorization_params.{name}")
    url = render(provider.request_token_url or "", config, "request_token_url")
    try:
        reply = fetch_request_token(url, consumer_key, consumer_secret, redirect_uri)
    except TokenError as exc:
        raise token_failure(exc, "issue a request token") from None
    SessionStore().put_state(_state_record(
        session, integration, consumer_key, config, redirect_uri,
        state_hash=token_hash(reply["oauth_token"]), auth_mode="oauth1",
        request_token_secret=reply["oauth_token_secret"]))
    return add_query(authorization_url, {"oauth_token": reply["oauth_token"], **query})


def _consumer(integration: Any) -> tuple[str, str]:
    """The integration's OAuth 1.0a consumer key and secret; both are required."""
    consumer_secret = client_secret(integration)
    if not integration.oauth_client_id or not consumer_secret:
        raise InvalidRequest(f"integration '{integration.provider_config_key}' needs an "
                             "oauth_client_id and oauth_client_secret for OAuth 1.0a",
                             code="integration_not_configured")
    return integration.oauth_client_id, consumer_secret


def _state_record(session: ConnectSessionRecord, integration: Any, client_id: str,
                  config: dict[str, str], redirect_uri: str, *, state_hash: str,
                  **extra: Any) -> OAuthStateRecord:
    """A new attempt bound to its session, integration, client and redirect URI."""
    return OAuthStateRecord(
        state_hash=state_hash, session_hash=session.token_hash,
        provider_config_key=integration.provider_config_key, provider=integration.provider,
        client_id=client_id, connection_id=session.connection_id,
        redirect_uri=redirect_uri, connection_config_json=json.dumps(config),
        created_at=iso(utc_now()) or "",
        expires_at=min(int(time.time()) + STATE_TTL_SECONDS, session.expires_at),
        success_url=session.success_url, error_url=session.error_url, origin=session.origin,
        **extra)


def _authorization_query(integration: Any, provider: Any, config: dict[str, str], *,
                         client_id: str, redirect_uri: str,
                         state: str) -> tuple[dict[str, str], str | None]:
    """The authorization request's parameters, and the PKCE verifier when PKCE is on."""
    query = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
             "state": state}
    scopes = requested_scopes(integration, provider)
    if scopes:
        query[provider.scope_param] = scopes
    verifier = None
    if provider.pkce:
        verifier = secrets.token_urlsafe(64)
        query["code_challenge"] = pkce_challenge(verifier)
        query["code_challenge_method"] = "S256"
    for name, value in provider.authorization_params.items():
        query[name] = render(value, config, f"authorization_params.{name}")
    return query, verifier


def complete_authorization(params: dict[str, str]) -> FlowResult:
    """Consume the state, exchange the code and store the connection. Raises `FlowError`.

    An OAuth 1.0a callback names its attempt by `oauth_token` (or `denied`, on a cancel) rather
    than `state`. Nothing is written unless every check and the exchange succeeded.
    """
    state = params.get("state") or params.get("oauth_token") or params.get("denied")
    if not state:
        error = (_provider_refusal(params) if params.get("error")
                 else InvalidState("state: query parameter is required"))
        _log_refusal("callback", error, None)
        raise FlowError(error)
    try:
        record = SessionStore().consume_state(token_hash(state), iso(utc_now()) or "")
    except StateNotConsumable as exc:
        error = InvalidState("this authorization was already completed or attempted; start "
                             "again from the connect link" if exc.replayed else
                             "the state is unknown: it was not issued by this Terapi")
        _log_refusal("callback", error, None)
        raise FlowError(error) from None
    context = FlowContext(record.connection_id, record.provider_config_key, record.success_url,
                          record.error_url, record.origin)
    try:
        connection = _finish(record, params)
    except TerapiError as exc:
        _log_refusal("callback", exc, record.provider_config_key)
        raise FlowError(exc, context) from None
    logger.info("oauth callback completed", provider_config_key=record.provider_config_key,
                auth_mode=record.auth_mode)
    return FlowResult(connection, context)


def _finish(record: OAuthStateRecord, params: dict[str, str]) -> dict[str, Any]:
    """Check the consumed attempt is still valid, then exchange and store (OAuth 2.0 or 1.0a)."""
    session = _live_session(record)
    if params.get("error"):
        raise _provider_refusal(params)
    if record.auth_mode == "oauth1":
        return _finish_oauth1(record, session, params)
    code = params.get("code")
    if not code:
        raise InvalidRequest("code: query parameter is required", code="missing_code")
    integration = _unchanged_integration(record)
    provider = provider_for(integration)
    config = json.loads(record.connection_config_json)
    tokens = _exchange_code(integration, provider, record, config, code)
    changes = {"credentials_type": "oauth2", "expires_at": iso(tokens.expires_at)}
    return _store(record, session, tokens.to_secret(), changes,
                  {**config, **tokens.connection_config})


def _finish_oauth1(record: OAuthStateRecord, session: ConnectSessionRecord,
                   params: dict[str, str]) -> dict[str, Any]:
    """Exchange the authorized request token and its verifier for the access token; store it."""
    if params.get("denied"):
        raise TerapiError("the provider did not authorize the connection (denied)",
                          code="authorization_denied", status=400)
    verifier, request_token = params.get("oauth_verifier"), params.get("oauth_token")
    if not verifier or not request_token:
        raise InvalidRequest("oauth_verifier: query parameter is required",
                             code="missing_verifier")
    integration = _unchanged_integration(record)
    provider = provider_for(integration)
    config = json.loads(record.connection_config_json)
    consumer_key, consumer_secret = _consumer(integration)
    keys = OAuth1Keys(consumer_key, consumer_secret, request_token,
                      record.request_token_secret or "")
    url = render(provider.token_url or "", config, "token_url")
    try:
        reply = fetch_access_token(url, keys, verifier)
    except TokenError as exc:
        raise token_failure(exc, "exchange the authorized request token") from None
    secret_value = {"type": "oauth1", "oauth_token": reply["oauth_token"],
                    "oauth_token_secret": reply["oauth_token_secret"], "raw": reply}
    return _store(record, session, secret_value,
                  {"credentials_type": "oauth1", "expires_at": None}, config)


def _live_session(record: OAuthStateRecord) -> ConnectSessionRecord:
    """The attempt's session, if the attempt and the session are unexpired and still allowed."""
    if record.is_expired():
        raise InvalidState("the authorization took too long and its state expired; start again "
                           "from the connect link", code="state_expired")
    session = SessionStore().find_session(record.session_hash)
    if session is None or session.is_expired():
        raise InvalidConnectSession("the connect session expired before the authorization "
                                    "completed", code="connect_session_expired")
    if record.provider_config_key not in json.loads(session.allowed_integrations_json):
        raise IntegrationNotAllowed(f"this connect session does not allow integration "
                                    f"'{record.provider_config_key}'")
    return session


def _unchanged_integration(record: OAuthStateRecord) -> Any:
    """The attempt's integration, refused if its provider or client changed meanwhile."""
    integration = IntegrationStore().get(record.provider_config_key)
    if (integration.provider, integration.oauth_client_id) != (record.provider, record.client_id):
        raise InvalidState("the integration's provider or OAuth client changed after this "
                           "authorization started; start again", code="state_mismatch")
    return integration


def _store(record: OAuthStateRecord, session: ConnectSessionRecord,
           secret_value: dict[str, Any], changes: dict[str, Any],
           connection_config: dict[str, Any]) -> dict[str, Any]:
    """Write the credentials with the session's metadata, end user and webhook override."""
    if session.webhook_url:
        # Only when set: a None would remove an override the connection already has.
        changes = {**changes, "webhook_url": session.webhook_url}
    write = CredentialWrite(
        secret_value=secret_value,
        changes=changes,
        metadata_json=session.metadata_json,
        connection_config=connection_config,
        end_user=json.loads(session.end_user_json) if session.end_user_json else None,
    )
    return write_credentials(record.provider, record.provider_config_key,
                             record.connection_id, write)


def _exchange_code(integration: Any, provider: Any, record: OAuthStateRecord,
                   config: dict[str, str], code: str) -> TokenSet:
    client = oauth_client_for(integration, provider, config)
    grant = {"grant_type": "authorization_code", "code": code,
             "redirect_uri": record.redirect_uri}
    if record.code_verifier:
        grant["code_verifier"] = record.code_verifier
    url = render(provider.token_url or "", config, "token_url")
    try:
        return post_token_request(url, client, grant, provider.token_response_path,
                                  provider.connection_config_from_token)
    except TokenError as exc:
        raise token_failure(exc, "exchange the authorization code") from None


def _active_session(token: str | None) -> ConnectSessionRecord:
    if not token:
        error = InvalidConnectSession("connect_session_token: query parameter is required")
    else:
        session = SessionStore().find_session(token_hash(token))
        if session is not None and not session.is_expired():
            return session
        error = (InvalidConnectSession("the connect session is unknown") if session is None
                 else InvalidConnectSession("the connect session has expired; ask the "
                                            "application for a new connect link",
                                            code="connect_session_expired"))
    _log_refusal("connect", error, None)
    raise FlowError(error)


def _context(session: ConnectSessionRecord, provider_config_key: str) -> FlowContext:
    return FlowContext(session.connection_id, provider_config_key, session.success_url,
                       session.error_url, session.origin)


def _connection_config(names: list[str], params: dict[str, str]) -> dict[str, str]:
    missing = [name for name in names if not params.get(name)]
    if missing:
        raise InvalidRequest(f"{missing[0]}: query parameter is required by this provider "
                             f"(connection config)", code="missing_connection_config")
    return {name: params[name] for name in names}


def _provider_refusal(params: dict[str, str]) -> TerapiError:
    reason = params.get("error", "")[:100]
    description = params.get("error_description", "")[:200]
    detail = f"{reason}: {description}" if description else reason
    code = "authorization_denied" if reason == "access_denied" else "authorization_failed"
    return TerapiError(f"the provider did not authorize the connection ({detail})",
                       code=code, status=400)


def _log_refusal(step: str, error: TerapiError, provider_config_key: str | None) -> None:
    logger.info("oauth flow refused", step=step, error=error.code, status=error.status,
                provider_config_key=provider_config_key)


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge of a PKCE verifier (RFC 7636)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def add_query(url: str, params: dict[str, str]) -> str:
    """Append parameters to a URL, keeping any query it already has."""
    parts = urlsplit(url)
    existing = parse_qsl(parts.query, keep_blank_values=True)
    query = urlencode([*existing, *params.items()], quote_via=quote)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
