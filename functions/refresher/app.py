"""Scheduled refresher: renews tokens that expire soon, so idle connections stay alive.

Runs on an EventBridge schedule. Due connections come from the sparse `by_refresh_due` index
(sharded, queried shard by shard: never a scan), and each is refreshed through the same
single-flight path as the token endpoint, with bounded concurrency and within the function's
remaining time.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from terapi.observability import logger, metrics, tracer
from terapi.services.refresher import refresh_due_connections


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(_event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    """Refresh every connection due within the look-ahead window; report the counts."""
    summary = refresh_due_connections(context.get_remaining_time_in_millis)
    logger.info("scheduled refresh finished", **summary)
    return summary
