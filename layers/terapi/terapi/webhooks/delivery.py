"""Delivery of one queued event: sign the exact body bytes, POST with a timeout, judge the reply.

2xx is delivered; anything else (another status, a timeout, a refused connection) raises, and
the sender reports that record as failed. Retries follow an exponential schedule set per message
with `ChangeMessageVisibility`: `retry_base` seconds (30 by default) doubling per receive, capped
at an hour, so ten tries span about three hours before the queue's redrive policy
(`maxReceiveCount: 10`) moves the event to the dead-letter queue. Redirects are not followed.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlsplit

from terapi.observability import logger
from terapi.settings import get_settings
from terapi.store.webhook_settings import SigningKeys, SigningKeyStore, WebhookSettingsStore
from terapi.webhooks.signing import SIGNATURE_HEADER, signature_header

MAX_RETRY_DELAY_SECONDS = 3600
KEY_CACHE_SECONDS = 300
USER_AGENT = "Terapi-Webhooks/1"
_keys: tuple[str, float, SigningKeys] | None = None
_pool: Any = None


class DeliveryFailed(Exception):
    """The receiver did not acknowledge the event with a 2xx reply."""


def deliver(record: Any) -> None:
    """Deliver one SQS record's event to its URL; raise `DeliveryFailed` unless it got a 2xx."""
    message = json.loads(record.body)
    body = message["body"].encode("ascii")
    header = signature_header(body, active_keys(signing_keys(), time.time()))
    attempt = int(record.attributes.approximate_receive_count or 1)
    host = urlsplit(message["url"]).hostname
    status = _post(message, body, header, attempt)
    if not 200 <= status < 300:
        logger.warning("webhook delivery failed", event_id=message["event_id"], host=host,
                       status=status, attempt=attempt)
        raise DeliveryFailed(f"receiver answered {status}")
    logger.info("webhook delivered", event_id=message["event_id"], host=host, status=status,
                attempt=attempt)


def _post(message: dict[str, Any], body: bytes, header: str, attempt: int) -> int:
    import urllib3

    url, event_id = message["url"], message["event_id"]
    host = urlsplit(url).hostname
    timeout = get_settings().webhook_timeout_seconds
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
               SIGNATURE_HEADER: header, "Terapi-Event-Id": event_id}
    try:
        reply = _http().request("POST", url, body=body, headers=headers, redirect=False,
                                retries=False, preload_content=False,
                                timeout=urllib3.Timeout(connect=min(timeout, 3.0), read=timeout))
    except urllib3.exceptions.HTTPError as exc:
        logger.warning("webhook delivery failed", event_id=event_id, host=host,
                       error_type=type(exc).__name__, attempt=attempt)
        raise DeliveryFailed(type(exc).__name__) from None
    reply.drain_conn()
    reply.release_conn()
    return reply.status


def _http() -> Any:
    """One connection pool per container, reused by warm invocations."""
    global _pool
    if _pool is None:
        import urllib3

        _pool = urllib3.PoolManager(num_pools=20, maxsize=4)
    return _pool


def active_keys(keys: SigningKeys, now: float) -> list[str]:
    """The keys to sign with: the current one, plus the previous one inside its window."""
    active = [keys.current]
    if keys.previous and (keys.previous_until or 0) > now:
        active.append(keys.previous)
    return active


def signing_keys() -> SigningKeys:
    """The signing keys, cached until the settings item shows a newer version (or 5 minutes)."""
    global _keys
    now = time.monotonic()
    arn = get_settings().webhook_signing_key_arn
    version = WebhookSettingsStore().get().signing_key_version
    cached = _keys
    if cached and cached[0] == arn and now - cached[1] <= KEY_CACHE_SECONDS and (
            cached[2].version >= version):
        return cached[2]
    keys = SigningKeyStore(arn).read()
    # A rotation whose secret write is still under way must not be cached as current.
    _keys = (arn, now, keys) if keys.version >= version else None
    return keys


def retry_delay(receive_count: int, base: int) -> int:
    """Seconds before the next try after `receive_count` tries: doubling, capped at an hour."""
    return min(base * 2 ** max(receive_count - 1, 0), MAX_RETRY_DELAY_SECONDS)


def schedule_retries(records: list[dict[str, Any]], failures: list[dict[str, str]]) -> None:
    """Hide each failed message for its backoff delay; a failure here only shortens the wait."""
    from terapi.aws import client

    failed = {f["itemIdentifier"] for f in failures}
    settings = get_settings()
    for record in records:
        if record["messageId"] not in failed:
            continue
        count = int((record.get("attributes") or {}).get("ApproximateReceiveCount") or 1)
        delay = retry_delay(count, settings.webhook_retry_base_seconds)
        try:
            client("sqs").change_message_visibility(
                QueueUrl=settings.webhook_queue_url, ReceiptHandle=record["receiptHandle"],
                VisibilityTimeout=delay)
        except Exception as exc:  # noqa: BLE001 - the queue's own visibility timeout applies
            logger.warning("webhook retry delay not set", error_type=type(exc).__name__)
        else:
            logger.info("webhook retry scheduled", attempt=count, retry_in_seconds=delay)
