"""Webhook events and `publish`, which enqueues them for the sender without ever failing a caller.

Targets are resolved when the event is published: the connection's override (else the primary
URL) and the secondary URL, one SQS FIFO message per target. Each target has its own message
group per connection, so one connection's events reach a receiver in the order they happened,
and a receiver that is down does not hold back another. The event `id` (`evt_` + a UUID) is the
same for every target and every retry: receivers deduplicate on it.

Publishing is best effort by design: it runs after the state change is committed, and a failure
to enqueue is logged with the event's keys and counted (`WebhookPublishFailed`), never raised.
The SQS client retries once (botocore standard mode, two attempts) with short timeouts, so a
slow queue delays the request by seconds at most.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any

from terapi.models import iso, utc_now
from terapi.observability import logger
from terapi.settings import get_settings
from terapi.store.connections import ConnectionRecord
from terapi.store.webhook_settings import WebhookSettingsRecord, WebhookSettingsStore


def new_event_id() -> str:
    """A unique event id; receivers deduplicate deliveries on it."""
    return f"evt_{uuid.uuid4().hex}"


@dataclass(frozen=True)
class WebhookEvent:
    """One event as the receiver sees it; `error` is present only on failures."""

    type: str
    operation: str
    success: bool
    connection_id: str
    provider_config_key: str
    provider: str
    error: dict[str, str] | None = None
    id: str = field(default_factory=new_event_id)
    created_at: str = field(default_factory=lambda: iso(utc_now()) or "")

    def to_body(self) -> bytes:
        """The exact bytes that are signed and delivered (compact, ASCII-only JSON)."""
        data = {k: v for k, v in asdict(self).items() if not (k == "error" and v is None)}
        return json.dumps(data, separators=(",", ":")).encode("ascii")


class PublishFailed(Exception):
    """SQS accepted only part of the batch (or none of it)."""


def auth_event(record: ConnectionRecord, operation: str,
               error: tuple[str, str] | None = None) -> WebhookEvent:
    """An `auth` event about one connection; `error` is `(type, message)` on failure."""
    return WebhookEvent(
        type="auth", operation=operation, success=error is None,
        connection_id=record.connection_id, provider_config_key=record.provider_config_key,
        provider=record.provider,
        error={"type": error[0], "message": error[1]} if error else None)


def publish_auth(record: ConnectionRecord, operation: str,
                 error: tuple[str, str] | None = None) -> bool:
    """Publish an `auth` event to the connection's override or the deployment's URLs."""
    return publish(auth_event(record, operation, error),
                   override_url=getattr(record, "webhook_url", None))


def publish(event: WebhookEvent, *, override_url: str | None = None) -> bool:
    """Enqueue an event for each target; never raises. Returns whether it was enqueued."""
    queue_url = get_settings().webhook_queue_url
    if not queue_url:
        return False
    try:
        targets = delivery_targets(WebhookSettingsStore().get(), override_url)
        if not targets:
            logger.info("webhook not configured", event_id=event.id, type=event.type,
                        operation=event.operation)
            return False
        _enqueue(queue_url, event, targets)
    except Exception as exc:  # noqa: BLE001 - publishing must never fail the caller
        logger.error("webhook publish failed", event_id=event.id, type=event.type,
                     operation=event.operation, provider_config_key=event.provider_config_key,
                     error_type=type(exc).__name__)
        _count("WebhookPublishFailed")
        return False
    logger.info("webhook published", event_id=event.id, type=event.type,
                operation=event.operation, targets=len(targets))
    return True


def delivery_targets(settings: WebhookSettingsRecord, override_url: str | None) -> list[str]:
    """The override (else the primary URL), then the secondary URL; no URL twice."""
    targets: list[str] = []
    for url in (override_url or settings.primary_url, settings.secondary_url):
        if url and url not in targets:
            targets.append(url)
    return targets


def _enqueue(queue_url: str, event: WebhookEvent, targets: list[str]) -> None:
    body = event.to_body().decode("ascii")
    entries = []
    for index, url in enumerate(targets):
        group = f"{url}\0{event.provider_config_key}\0{event.connection_id}"
        entries.append({
            "Id": str(index),
            "MessageBody": json.dumps({"url": url, "event_id": event.id, "body": body}),
            "MessageGroupId": hashlib.sha256(group.encode()).hexdigest(),
            "MessageDeduplicationId": hashlib.sha256(f"{event.id}\0{url}".encode()).hexdigest(),
        })
    reply = _queue_client().send_message_batch(QueueUrl=queue_url, Entries=entries)
    failed = reply.get("Failed") or []
    if failed:
        raise PublishFailed(",".join(sorted({f.get("Code", "") for f in failed})))


def _queue_client() -> Any:
    return _client_for(os.environ.get("AWS_ENDPOINT_URL", ""),
                       os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION", ""))


@cache
def _client_for(_endpoint: str, _region: str) -> Any:
    """An SQS client with short timeouts and one retry: publishing must not hold up a request."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=1,
                    read_timeout=2)
    return boto3.session.Session().client("sqs", config=config)


def _count(name: str) -> None:
    """Emit one metric at once: API functions do not flush a shared metrics buffer."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    with single_metric(name=name, unit=MetricUnit.Count, value=1,
                       namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Terapi")):
        pass
