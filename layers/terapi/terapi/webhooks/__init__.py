"""Webhooks to the application: events, signing, configuration and delivery.

An event is published by the function whose state change caused it (enqueued to an SQS FIFO
queue, never raising into the caller) and delivered by the webhook sender function, which signs
the exact body bytes, POSTs them with a timeout and leaves failures to SQS for retry with
backoff and, after the queue's `maxReceiveCount`, to its dead-letter queue.
"""

from terapi.webhooks.events import WebhookEvent, publish, publish_auth
from terapi.webhooks.signing import SIGNATURE_HEADER, signature_header, verify_signature

__all__ = ["SIGNATURE_HEADER", "WebhookEvent", "publish", "publish_auth", "signature_header",
           "verify_signature"]
