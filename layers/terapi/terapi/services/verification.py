"""Talking to a provider about credentials outside the browser flow: verify, fetch, revoke.

- API-key and basic credentials imported through `POST /connection` are tried against the
  catalog's `verification` request before they are stored. A refusal is `400
  connection_test_failed`; a provider that cannot be reached, times out, or answers 5xx/429 is
  `502 provider_unavailable`, because the credentials were not judged and a retry may succeed.
- `oauth2_cc` connections get their token by the client-credentials grant. The client id and
  secret come from the request when it carries them (kept as top-level `client_id` and
  `client_secret` in the connection's secret, where token refresh looks for them), else from the
  integration.
- Deleting a connection revokes its token at the provider's RFC 7009 `revoke_url`, best effort.

Redirects are never followed, so a credential is only ever sent to the URL the catalog names.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import quote, urlencode

from terapi.catalog import BASIC_PLACEHOLDER_PASSWORD, Provider, render_template
from terapi.errors import InvalidRequest, TerapiError
from terapi.models import Credentials, normalise_scopes
from terapi.oauth2 import OAuthClient, TokenError, TokenSet, post_token_request
from terapi.observability import logger
from terapi.services.integrations import client_secret, provider_for
from terapi.store.connections import ConnectionRecord
from terapi.store.integrations import IntegrationRecord, IntegrationStore
from terapi.store.secrets import SecretStore

CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 8.0
CLIENT_CREDENTIAL_FIELDS = frozenset({"type", "client_id", "client_secret"})


class ConnectionTestFailed(TerapiError):
    """The provider looked at the credentials and refused them."""

    status = 400
    code = "connection_test_failed"


class ProviderUnavailable(TerapiError):
    """The provider could not be asked (unreachable, timeout, 5xx, 429); nothing was stored."""

    status = 502
    code = "provider_unavailable"


@cache
def _pool() -> Any:
    import urllib3

    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT),
        retries=False, maxsize=10)


def render(template: str, connection_config: dict[str, str], field: str) -> str:
    """Render a catalog template; a missing or unsafe config value is the caller's 400."""
    try:
        return render_template(template, connection_config)
    except ValueError as exc:
        raise InvalidRequest(f"connection_config: {exc} (needed by the provider's {field})",
                             code="invalid_connection_config") from None


def requested_scopes(integration: IntegrationRecord, provider: Provider) -> str:
    """The integration's scopes, else the provider's defaults, joined the provider's way."""
    scopes = normalise_scopes(integration.oauth_scopes) or provider.default_scopes
    return provider.scope_separator.join(scopes)


def oauth_client_for(integration: IntegrationRecord, provider: Provider,
                     connection_config: dict[str, str], *, client_id: str | None = None,
                     secret: str | None = None) -> OAuthClient:
    """The OAuth client presented at the token endpoint, as the provider wants it."""
    chosen_id = client_id or integration.oauth_client_id
    if not chosen_id:
        raise InvalidRequest(f"integration '{integration.provider_config_key}' has no "
                             "oauth_client_id", code="integration_not_configured")
    extra = {name: render(value, connection_config, f"token_params.{name}")
             for name, value in provider.token_params.items()}
    return OAuthClient(client_id=chosen_id, client_secret=secret or client_secret(integration),
                       auth_method=provider.token_auth_method,
                       request_format=provider.token_request_format, extra_params=extra)


def token_failure(exc: TokenError, action: str) -> TerapiError:
    """Map a token-endpoint failure: a refusal is the caller's 400, an outage a 502."""
    detail = f"{exc.error}: {exc.description}" if exc.description else exc.error
    if exc.permanent:
        return TerapiError(f"the provider refused to {action} ({detail})",
                           code="token_exchange_failed", status=400)
    return ProviderUnavailable(f"the provider's token endpoint failed while trying to {action} "
                               f"({detail}); retry shortly")


def wants_client_credentials(payload: dict[str, Any] | None) -> bool:
    """True when an `oauth2_cc` import asks Terapi to fetch the token rather than import one."""
    return payload is None or set(payload) <= CLIENT_CREDENTIAL_FIELDS


def fetch_client_credentials(integration: IntegrationRecord, provider: Provider,
                             payload: dict[str, Any] | None,
                             connection_config: dict[str, str]) -> tuple[TokenSet, dict[str, Any]]:
    """Run the client-credentials grant; return the tokens and any secret fields to keep.

    A refusal (`invalid_client`, ...) is `400 connection_test_failed`.
    """
    override = {k: v for k, v in (payload or {}).items() if k in ("client_id", "client_secret")}
    for name, value in override.items():
        if not isinstance(value, str) or not value:
            raise InvalidRequest(f"credentials.{name}: must be a non-empty string")
    client = oauth_client_for(integration, provider, connection_config,
                              client_id=override.get("client_id"),
                              secret=override.get("client_secret"))
    params = {"grant_type": "client_credentials"}
    scopes = requested_scopes(integration, provider)
    if scopes:
        params["scope"] = scopes
    url = render(provider.token_url or "", connection_config, "token_url")
    try:
        tokens = post_token_request(url, client, params, provider.token_response_path,
                                    provider.connection_config_from_token)
    except TokenError as exc:
        failure = token_failure(exc, "issue a token for these client credentials")
        if exc.permanent:
            raise ConnectionTestFailed(failure.message) from None
        raise failure from None
    logger.info("client credentials token fetched", provider_config_key=
                integration.provider_config_key)
    extra = {"client_id": client.client_id, "client_secret": client.client_secret} if (
        override) else {}
    return tokens, extra


def verify_credentials(provider: Provider, credentials: Credentials,
                       connection_config: dict[str, str]) -> None:
    """Try API-key or basic credentials at the catalog's verification endpoint, if it has one."""
    check = provider.verification
    if check is None or provider.api_base_url is None or credentials.type != provider.auth_mode:
        return
    base = render(provider.api_base_url, connection_config, "api_base_url")
    url = base.rstrip("/") + check.path
    headers = {name: render(value, connection_config, f"proxy_headers.{name}")
               for name, value in provider.proxy_headers.items()}
    headers.setdefault("Accept", "application/json")
    if credentials.type == "api_key" and provider.api_key is not None:
        value = provider.api_key.format.replace("${api_key}", credentials.api_key)
        if provider.api_key.location == "header":
            headers[provider.api_key.name] = value
        else:
            url += ("&" if "?" in url else "?") + urlencode({provider.api_key.name: value},
                                                            quote_via=quote)
    elif credentials.type == "basic":
        password = credentials.password or (
            BASIC_PLACEHOLDER_PASSWORD if provider.basic and provider.basic.password_optional
            else "")
        pair = f"{credentials.username}:{password}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    status = _send(check.method, url, headers, provider)
    if status in check.expected_status:
        logger.info("credentials verified", provider=provider.name, status=status)
        return
    if status >= 500 or status == 429:
        raise ProviderUnavailable(f"{provider.display_name} could not verify the credentials "
                                  f"(HTTP {status}); retry shortly")
    logger.info("credentials rejected by provider", provider=provider.name, status=status)
    raise ConnectionTestFailed(f"{provider.display_name} rejected the credentials "
                               f"(HTTP {status} from its verification endpoint)")


def _send(method: str, url: str, headers: dict[str, str], provider: Provider) -> int:
    import urllib3

    try:
        response = _pool().request(method, url, headers=headers, redirect=False,
                                   preload_content=True)
    except urllib3.exceptions.HTTPError as exc:
        # The exception text can hold the URL, and a query-string key with it: log its type only.
        logger.warning("provider unreachable", provider=provider.name,
                       error_type=type(exc).__name__)
        raise ProviderUnavailable(f"{provider.display_name} could not be reached to verify the "
                                  f"credentials ({type(exc).__name__}); retry shortly") from None
    return response.status


@dataclass(frozen=True)
class Revocation:
    """Everything needed to revoke a deleted connection's token, read before the deletion."""

    url: str
    client: OAuthClient
    token_param: str
    token: str
    token_type_hint: str
    provider_config_key: str


def prepare_revocation(record: ConnectionRecord,
                       integration: IntegrationRecord | None = None) -> Revocation | None:
    """Read what revoking this connection's token needs; `None` when nothing can be revoked.

    Runs before the secret is scheduled for deletion (a scheduled secret cannot be read). Any
    failure here is logged and means no revocation: it must never block the delete. An
    integration being deleted no longer reads as active, so its deletion passes it in.
    """
    try:
        integration = integration or IntegrationStore().get(record.provider_config_key)
        provider = provider_for(integration)
        if not provider.revoke_url or record.credentials_type != "oauth2":
            return None
        secret = SecretStore().read(record.secret_arn)
        hint = "refresh_token" if secret.get("refresh_token") else "access_token"
        token = secret.get(hint)
        if not token:
            return None
        client = OAuthClient(
            client_id=secret.get("client_id") or integration.oauth_client_id or "",
            client_secret=secret.get("client_secret") or client_secret(integration),
            auth_method=provider.revoke_auth_method)
        url = render_template(provider.revoke_url, json.loads(record.connection_config_json))
    except Exception as exc:  # noqa: BLE001 - revocation is best effort by design
        logger.warning("token revocation skipped", provider_config_key=record.provider_config_key,
                       error_type=type(exc).__name__)
        return None
    return Revocation(url, client, provider.revoke_token_param, token, hint,
                      record.provider_config_key)


def revoke(revocation: Revocation | None) -> bool:
    """POST the token to the revoke endpoint; log, never raise. Returns whether it was accepted."""
    if revocation is None:
        return False
    client = revocation.client
    body = {revocation.token_param: revocation.token, "token_type_hint": revocation.token_type_hint}
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    if client.auth_method == "client_secret_basic" and client.client_id:
        pair = f"{quote(client.client_id, safe='')}:{quote(client.client_secret or '', safe='')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    elif client.client_id:
        body["client_id"] = client.client_id
        if client.client_secret:
            body["client_secret"] = client.client_secret
    try:
        response = _pool().request("POST", revocation.url, body=urlencode(body).encode(),
                                   headers=headers, redirect=False)
    except Exception as exc:  # noqa: BLE001 - revocation is best effort by design
        logger.warning("token revocation failed", provider_config_key=
                       revocation.provider_config_key, error_type=type(exc).__name__)
        return False
    if response.status >= 400:
        logger.warning("token revocation refused", provider_config_key=
                       revocation.provider_config_key, status=response.status)
        return False
    logger.info("token revoked", provider_config_key=revocation.provider_config_key)
    return True
