"""OAuth 1.0a request signing (RFC 5849, HMAC-SHA1), delegated to oauthlib.

Only the `Authorization` header oauthlib computes is used; the request itself (URL, body) is sent
exactly as the caller built it. A form-encoded body's parameters are part of the signature, as the
RFC requires; any other body is not. A fresh nonce and timestamp are drawn on every call, so a
retried request is signed again rather than replayed.

The hosted connect flow's two token requests (RFC 5849 section 2.1 and 2.3) are here too: the
temporary-credentials request and the token request. Their failures are `TokenError`s classified
as the OAuth 2.0 ones are: 5xx, 408, 429, timeouts and connection errors are transient, any other
non-2xx is a refusal. Error descriptions carry the HTTP status only, never the provider's body,
which could echo a token.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import parse_qsl

from terapi.oauth2 import TokenError

CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 10.0
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class OAuth1Keys:
    """The consumer (the integration's client) and the token (the connection's credentials)."""

    consumer_key: str
    consumer_secret: str
    token: str
    token_secret: str


def authorization_header(keys: OAuth1Keys, method: str, url: str, content_type: str | None,
                         body: bytes) -> str:
    """The `Authorization: OAuth ...` value for one request; ValueError if it cannot be signed."""
    from oauthlib.oauth1 import SIGNATURE_HMAC_SHA1, SIGNATURE_TYPE_AUTH_HEADER, Client

    client = Client(keys.consumer_key, client_secret=keys.consumer_secret,
                    resource_owner_key=keys.token, resource_owner_secret=keys.token_secret,
                    signature_method=SIGNATURE_HMAC_SHA1,
                    signature_type=SIGNATURE_TYPE_AUTH_HEADER)
    media = (content_type or "").split(";", 1)[0].strip().lower()
    signed_body: str | None = None
    headers: dict[str, str] = {}
    if media == FORM_CONTENT_TYPE and body and method.upper() not in ("GET", "HEAD"):
        try:
            signed_body = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError("a form-encoded body must be UTF-8 to be signed") from exc
        headers["Content-Type"] = FORM_CONTENT_TYPE
    _, signed, _ = client.sign(url, http_method=method.upper(), body=signed_body, headers=headers)
    return signed["Authorization"]


@cache
def _pool() -> Any:
    import urllib3

    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT),
        retries=False, maxsize=10)


def fetch_request_token(url: str, consumer_key: str, consumer_secret: str,
                        callback_uri: str) -> dict[str, str]:
    """Obtain temporary credentials (a request token and its secret) for `callback_uri`.

    A reply with `oauth_callback_confirmed` other than `true` is a refusal; one without it (an
    OAuth 1.0 provider) is accepted. Raises `TokenError`.
    """
    from oauthlib.oauth1 import Client

    client = Client(consumer_key, client_secret=consumer_secret, callback_uri=callback_uri)
    reply = _post(url, client)
    confirmed = reply.get("oauth_callback_confirmed")
    if confirmed is not None and confirmed.lower() != "true":
        raise TokenError("callback_not_confirmed", "the provider did not confirm the callback "
                         "URL", permanent=True, status=200)
    return reply


def fetch_access_token(url: str, keys: OAuth1Keys, verifier: str) -> dict[str, str]:
    """Exchange an authorized request token and its verifier for token credentials.

    `keys` holds the request token and its secret. Returns the provider's whole form-encoded
    reply (with `oauth_token` and `oauth_token_secret`). Raises `TokenError`.
    """
    from oauthlib.oauth1 import Client

    client = Client(keys.consumer_key, client_secret=keys.consumer_secret,
                    resource_owner_key=keys.token, resource_owner_secret=keys.token_secret,
                    verifier=verifier)
    return _post(url, client)


def _post(url: str, client: Any) -> dict[str, str]:
    import urllib3

    _, signed, _ = client.sign(url, http_method="POST")
    headers = {"Authorization": signed["Authorization"], "Content-Length": "0"}
    try:
        response = _pool().request("POST", url, body=b"", headers=headers, redirect=False)
    except urllib3.exceptions.HTTPError as exc:
        raise TokenError("temporarily_unavailable", f"token endpoint unreachable "
                         f"({type(exc).__name__})", permanent=False, status=None) from None
    status = response.status
    if status >= 500 or status in (408, 429):
        raise TokenError("temporarily_unavailable", f"HTTP {status}", permanent=False,
                         status=status)
    if status >= 300:
        raise TokenError("request_refused", f"HTTP {status}", permanent=True, status=status)
    reply = dict(parse_qsl(response.data.decode("utf-8", "replace"), keep_blank_values=True))
    if not reply.get("oauth_token") or not reply.get("oauth_token_secret"):
        raise TokenError("invalid_response", "the reply holds no oauth_token and "
                         "oauth_token_secret", permanent=False, status=status)
    return reply
