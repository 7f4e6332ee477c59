"""Run the template's event-driven functions locally: schedules on a timer, SQS by polling.

Each `Schedule`/`ScheduleV2` event gets a daemon thread that invokes its function every rate
interval (`TERAPI_DEV_SCHEDULE_SECONDS` overrides every interval, for demos and tests). Each
`SQS` event gets a daemon thread that long-polls its queue like Lambda's event source mapping:
messages of a batch that succeeded are deleted, failed ones are left to reappear after the
queue's visibility timeout, so the queue's redrive policy eventually moves them to its DLQ.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import boto3

from devserver.functions import FunctionRunner
from devserver.template import ACCOUNT_ID, REGION, Refs, ScheduleEvent, SqsEvent, Template

log = logging.getLogger("devserver.workers")
SCHEDULE_OVERRIDE_VARIABLE = "TERAPI_DEV_SCHEDULE_SECONDS"
_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> float | None:
    """Seconds between runs of a `rate(...)` expression; `None` for anything else (cron)."""
    match = _RATE.match(expression.strip())
    if not match:
        return None
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]


def schedule_interval(event: ScheduleEvent) -> float | None:
    """The local interval of a schedule: the override when set, else its rate."""
    override = os.environ.get(SCHEDULE_OVERRIDE_VARIABLE)
    if override:
        return float(override)
    return rate_seconds(event.expression)


def scheduled_event(event: ScheduleEvent) -> Any:
    """The event EventBridge sends a scheduled function (or the schedule's own `Input`)."""
    if event.payload is not None:
        return event.payload
    rule = f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{event.function}-{event.name}"
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event",
            "source": "aws.events", "account": ACCOUNT_ID,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "region": REGION,
            "resources": [rule], "detail": {}}


def run_schedule(runner: FunctionRunner, event: ScheduleEvent, interval: float,
                 stop: threading.Event) -> None:
    """Invoke a scheduled function every `interval` seconds until `stop` is set."""
    while not stop.wait(interval):
        try:
            runner.invoke(event.function, scheduled_event(event))
        except Exception:
            log.exception("scheduled function failed: %s", event.function)


def sqs_records(messages: list[dict[str, Any]], queue_arn: str) -> list[dict[str, Any]]:
    """SQS messages as the `Records` of a Lambda SQS event."""
    records = []
    for message in messages:
        attributes = {k: v for k, v in (message.get("Attributes") or {}).items()}
        records.append({
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message.get("Body", ""),
            "attributes": attributes,
            "messageAttributes": {
                name: {"stringValue": value.get("StringValue"),
                       "binaryValue": value.get("BinaryValue"),
                       "stringListValues": [], "binaryListValues": [],
                       "dataType": value.get("DataType")}
                for name, value in (message.get("MessageAttributes") or {}).items()},
            "md5OfBody": message.get("MD5OfBody"),
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": REGION,
        })
    return records


def succeeded_messages(records: list[dict[str, Any]], result: Any, *,
                       report_failures: bool) -> list[dict[str, Any]]:
    """The records to delete after a successful invocation.

    With `ReportBatchItemFailures`, every record but the reported ones; a malformed report
    (not a list, or an id outside the batch) fails the whole batch, as Lambda does.
    """
    if not report_failures or not isinstance(result, dict) or not result.get(
            "batchItemFailures"):
        return records
    failures = result["batchItemFailures"]
    ids = {r["messageId"] for r in records}
    if not isinstance(failures, list):
        return []
    failed = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if identifier not in ids:
            return []
        failed.add(identifier)
    return [r for r in records if r["messageId"] not in failed]


def poll_queue(runner: FunctionRunner, event: SqsEvent, queue_arn: str,
               stop: threading.Event) -> None:
    """Deliver a queue's messages to its function in batches until `stop` is set."""
    client = boto3.session.Session().client("sqs")
    url = client.get_queue_url(QueueName=queue_arn.rsplit(":", 1)[-1])["QueueUrl"]
    while not stop.is_set():
        try:
            reply = client.receive_message(
                QueueUrl=url, MaxNumberOfMessages=min(max(event.batch_size, 1), 10),
                WaitTimeSeconds=1, AttributeNames=["All"], MessageAttributeNames=["All"])
        except Exception:
            log.exception("queue poll failed: %s", event.function)
            stop.wait(1)
            continue
        messages = reply.get("Messages") or []
        if messages:
            deliver_batch(runner, event, client, url, sqs_records(messages, queue_arn))


def deliver_batch(runner: FunctionRunner, event: SqsEvent, client: Any, url: str,
                  records: list[dict[str, Any]]) -> None:
    """Invoke the function with one batch and delete the messages it handled."""
    try:
        result = runner.invoke(event.function, {"Records": records})
    except Exception:
        log.exception("queue function failed: %s", event.function)
        return
    done = succeeded_messages(records, result, report_failures=event.report_batch_item_failures)
    if done:
        client.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(done)])


def start_workers(template: Template, refs: Refs, runner: FunctionRunner,
                  stop: threading.Event) -> list[threading.Thread]:
    """Start one daemon thread per enabled schedule and per SQS event source."""
    threads = []
    for schedule in template.schedules:
        interval = schedule_interval(schedule)
        if not schedule.enabled or interval is None:
            log.warning("schedule not run locally: %s %s", schedule.function, schedule.name)
            continue
        threads.append(threading.Thread(target=run_schedule, daemon=True,
                                        name=f"schedule-{schedule.function}-{schedule.name}",
                                        args=(runner, schedule, interval, stop)))
    for source in template.queue_events:
        if not source.enabled:
            continue
        queue_arn = str(template.resolve(source.queue, refs))
        threads.append(threading.Thread(target=poll_queue, daemon=True,
                                        name=f"sqs-{source.function}-{source.name}",
                                        args=(runner, source, queue_arn, stop)))
    for thread in threads:
        thread.start()
    return threads
