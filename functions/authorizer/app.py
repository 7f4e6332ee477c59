"""HTTP API Lambda authorizer: checks `Authorization: Bearer <secret key>` in constant time.

It never denies at the gateway, whose only denial bodies are `{"message": ...}`; instead it
tells the function whether the caller is authenticated, and the function answers 401 with the
API's `{"error", "message"}` body. The secret key is read from Secrets Manager once per container
and again after `KEY_CACHE_SECONDS`, so a rotated key takes effect within that time.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from typing import Any

from terapi.aws import client

KEY_CACHE_SECONDS = 300
_cached_key: tuple[float, bytes] | None = None


def _secret_key_digest() -> bytes:
    global _cached_key
    now = time.monotonic()
    if _cached_key is None or now - _cached_key[0] > KEY_CACHE_SECONDS:
        reply = client("secretsmanager").get_secret_value(
            SecretId=os.environ["TERAPI_SECRET_KEY_ARN"])
        _cached_key = (now, hashlib.sha256(reply["SecretString"].encode()).digest())
    return _cached_key[1]


def is_secret_key(authorization: str | None) -> bool:
    """True when the header carries the deployment's secret key (compared in constant time)."""
    if not authorization or not authorization.startswith("Bearer "):
        return False
    presented = hashlib.sha256(authorization[len("Bearer "):].strip().encode()).digest()
    return hmac.compare_digest(presented, _secret_key_digest())


def lambda_handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    """Simple-response authorizer: always admits, and says whether the key was right."""
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    return {"isAuthorized": True,
            "context": {"authenticated": is_secret_key(headers.get("authorization"))}}
