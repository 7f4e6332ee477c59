"""`Terapi-Signature`: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body bytes>">`.

During a key rotation window the header carries a second `v1=` made with the previous key, so a
receiver can move to the new key whenever it likes within the window. The timestamp lets a
receiver refuse replays: `verify_signature` rejects one older (or newer) than its tolerance.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "Terapi-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


def compute_signature(body: bytes, key: str, timestamp: int) -> str:
    """The hex HMAC-SHA256 of `"<timestamp>.<body>"` under one key."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def signature_header(body: bytes, keys: list[str], timestamp: int | None = None) -> str:
    """The header value: one timestamp and one `v1=` per active key, the current key first."""
    moment = int(time.time()) if timestamp is None else timestamp
    parts = [f"t={moment}", *(f"v1={compute_signature(body, key, moment)}" for key in keys)]
    return ",".join(parts)


def verify_signature(body: bytes, header: str, key: str,
                     tolerance: int = DEFAULT_TOLERANCE_SECONDS, now: float | None = None) -> bool:
    """True when one `v1=` of `header` signs `body` under `key` within `tolerance` seconds."""
    pairs = [part.strip().partition("=") for part in (header or "").split(",")]
    stamps = [value for name, _, value in pairs if name == "t"]
    if len(stamps) != 1 or not stamps[0].isdigit():
        return False
    timestamp = int(stamps[0])
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = compute_signature(body, key, timestamp)
    return any(hmac.compare_digest(expected, value) for name, _, value in pairs if name == "v1")
