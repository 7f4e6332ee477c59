"""Finding and refreshing connections whose tokens expire soon (the scheduled refresher)."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from terapi.errors import TerapiError
from terapi.observability import logger
from terapi.services.tokens import REFRESH_SHARDS, is_cooling_down, refresh
from terapi.store.connections import ConnectionStore
from terapi.store.dynamo import REFRESH_INDEX, dynamodb, table_name

LOOKAHEAD_SECONDS = 600
CONCURRENCY = 8
TIME_RESERVE_MS = 15000


def due_connections(horizon: int) -> list[tuple[str, str]]:
    """(provider config key, connection id) of every connection due before `horizon` (epoch s)."""
    db, due = dynamodb(), []
    for shard in range(REFRESH_SHARDS):
        query: dict[str, Any] = {
            "TableName": table_name(), "IndexName": REFRESH_INDEX,
            "KeyConditionExpression": "refresh_shard = :shard AND refresh_due_at <= :horizon",
            "ExpressionAttributeValues": {":shard": {"S": f"refresh#{shard}"},
                                          ":horizon": {"N": str(horizon)}},
        }
        while True:
            reply = db.query(**query)
            due += [(i["provider_config_key"]["S"], i["connection_id"]["S"])
                    for i in reply.get("Items", [])]
            if "LastEvaluatedKey" not in reply:
                break
            query["ExclusiveStartKey"] = reply["LastEvaluatedKey"]
    return due


def refresh_due_connections(remaining_ms: Callable[[], int]) -> dict[str, int]:
    """Refresh due connections with bounded concurrency; stop starting new ones near timeout."""
    due = due_connections(int(time.time()) + LOOKAHEAD_SECONDS)
    counts = {"due": len(due), "refreshed": 0, "failed": 0, "skipped": 0}

    def refresh_one(ids: tuple[str, str]) -> str:
        if remaining_ms() < TIME_RESERVE_MS:
            return "skipped"
        store = ConnectionStore()
        record = store.find(*ids)
        if record is None or record.credentials_status == "invalid" or is_cooling_down(record):
            return "skipped"
        try:
            refresh(record, force=False)
        except TerapiError as exc:
            logger.info("scheduled refresh did not renew a connection",
                        provider_config_key=ids[0], error=exc.code)
            return "failed"
        return "refreshed"

    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        for outcome in pool.map(refresh_one, due):
            counts[outcome] += 1
    return counts
