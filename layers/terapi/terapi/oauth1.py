"""OAuth 1.0a request signing (RFC 5849, HMAC-SHA1), delegated to oauthlib.

Only the `Authorization` header oauthlib computes is used; the request itself (URL, body) is sent
exactly as the caller built it. A form-encoded body's parameters are part of the signature, as the
RFC requires; any other body is not. A fresh nonce and timestamp are drawn on every call, so a
retried request is signed again rather than replayed.
"""

from __future__ import annotations

from dataclasses import dataclass

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
