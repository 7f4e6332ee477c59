"""Webhook sender: SQS FIFO-triggered; signs and POSTs each queued event to its receiver.

Partial batch responses (`ReportBatchItemFailures`): delivered records are deleted by Lambda,
failed ones get an exponential retry delay and stay on the queue until the redrive policy moves
them to the dead-letter queue. After a failure, the rest of that record's message group in the
batch is reported failed unsent, which keeps one connection's events in order per receiver.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import (
    SqsFifoPartialProcessor,
    process_partial_response,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from terapi.observability import logger, metrics, tracer
from terapi.webhooks import delivery

processor = SqsFifoPartialProcessor(skip_group_on_error=True)
# Failed records are reported, not raised: raising would skip their retry delays.
processor.raise_on_entire_batch_failure = False


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Deliver a batch; report the records that failed so SQS retries only those."""
    result = process_partial_response(event=event, record_handler=delivery.deliver,
                                      processor=processor, context=context)
    records = event.get("Records") or []
    failures = result.get("batchItemFailures") or []
    delivery.schedule_retries(records, failures)
    metrics.add_metric(name="WebhookDelivered", unit="Count", value=len(records) - len(failures))
    metrics.add_metric(name="WebhookDeliveryFailed", unit="Count", value=len(failures))
    return result
