"""OAuth 2.0 token endpoint client: authorization-code exchange, refresh, client credentials.

HTTP goes through urllib3, which botocore already loads, so this adds nothing to a cold start.
Failures are classified once, here: a refusal such as `invalid_grant` is permanent (retrying
cannot help), while 5xx, 429, timeouts and connection errors are transient. Error messages carry
the provider's error code and description, never a token.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from terapi.models import utc_now

PERMANENT_ERRORS = frozenset({"invalid_grant", "invalid_client", "unauthorized_client",
                              "unsupported_grant_type", "invalid_scope", "access_denied"})
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 10.0


class TokenError(Exception):
    """The token endpoint refused or failed; `permanent` says whether a retry could help."""

    def __init__(self, error: str, description: str, *, permanent: bool, status: int | None):
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description
        self.permanent = permanent
        self.status = status


@dataclass
class TokenSet:
    """A normalised token response; `raw` is the provider's full answer."""

    access_token: str
    refresh_token: str | None = None
    expires_at: datetime | None = None
    token_type: str | None = None
    scope: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    connection_config: dict[str, str] = field(default_factory=dict)

    def to_secret(self) -> dict[str, Any]:
        """The stored form of these credentials (the `oauth2` credential shape)."""
        value: dict[str, Any] = {"type": "oauth2", "access_token": self.access_token,
                                 "raw": self.raw}
        for name in ("refresh_token", "token_type", "scope"):
            if getattr(self, name) is not None:
                value[name] = getattr(self, name)
        if self.expires_at is not None:
            value["expires_at"] = self.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        return value


@cache
def _pool() -> Any:
    import urllib3

    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT),
        retries=False, maxsize=10)


@dataclass(frozen=True)
class OAuthClient:
    """The integration's OAuth client and how the provider wants it presented."""

    client_id: str
    client_secret: str | None
    auth_method: str = "client_secret_post"
    request_format: str = "form"
    extra_params: dict[str, str] = field(default_factory=dict)


def post_token_request(url: str, client: OAuthClient, params: dict[str, str],
                       token_path: str | None = None,
                       config_fields: dict[str, str] | None = None) -> TokenSet:
    """POST a grant to a token endpoint and normalise the answer (raises `TokenError`)."""
    import urllib3

    body = {**client.extra_params, **params}
    headers = {"Accept": "application/json"}
    if client.auth_method == "client_secret_basic":
        pair = f"{quote(client.client_id, safe='')}:{quote(client.client_secret or '', safe='')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    else:
        body["client_id"] = client.client_id
        if client.client_secret:
            body["client_secret"] = client.client_secret
    if client.request_format == "json":
        headers["Content-Type"] = "application/json"
        payload = json.dumps(body).encode()
    else:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        payload = urlencode(body).encode()
    try:
        response = _pool().request("POST", url, body=payload, headers=headers)
    except urllib3.exceptions.HTTPError as exc:
        raise TokenError("temporarily_unavailable", f"token endpoint unreachable "
                         f"({type(exc).__name__})", permanent=False, status=None) from None
    return parse_token_response(response.status, response.data,
                                response.headers.get("content-type", ""), token_path,
                                config_fields or {})


def parse_token_response(status: int, data: bytes, content_type: str, token_path: str | None,
                         config_fields: dict[str, str]) -> TokenSet:
    """Turn a token endpoint's answer into a `TokenSet` or a classified `TokenError`."""
    document = _decode(data, content_type)
    error = document.get("error")
    if status >= 400 or error or document.get("ok") is False:
        code = str(error or ("temporarily_unavailable" if status >= 500 or status in (408, 429)
                             else "invalid_request"))
        description = str(document.get("error_description") or "")[:300]
        permanent = code in PERMANENT_ERRORS or (400 <= status < 500 and status not in (408, 429))
        if status >= 500 or status in (408, 429):
            permanent = False
        raise TokenError(code, description, permanent=permanent, status=status)
    source = document
    for part in (token_path.split(".") if token_path else []):
        source = source.get(part) if isinstance(source, dict) else None
    if not isinstance(source, dict) or not source.get("access_token"):
        raise TokenError("invalid_response", "the token response holds no access_token",
                         permanent=False, status=status)
    return TokenSet(
        access_token=str(source["access_token"]),
        refresh_token=source.get("refresh_token"),
        expires_at=_expiry(source.get("expires_in")),
        token_type=source.get("token_type"),
        scope=source.get("scope") if isinstance(source.get("scope"), str) else None,
        raw=document,
        connection_config={target: str(document[name]) for name, target in config_fields.items()
                           if document.get(name) is not None},
    )


def _decode(data: bytes, content_type: str) -> dict[str, Any]:
    text = data.decode("utf-8", "replace")
    if "json" in content_type or text.lstrip().startswith("{"):
        try:
            document = json.loads(text)
        except ValueError:
            return {}
        return document if isinstance(document, dict) else {}
    return dict(parse_qsl(text))


def _expiry(expires_in: Any) -> datetime | None:
    try:
        seconds = int(expires_in)
    except (TypeError, ValueError):
        return None
    return utc_now() + timedelta(seconds=seconds) if seconds > 0 else None
