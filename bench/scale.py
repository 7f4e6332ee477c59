"""Scale: one page of connections with 1,000, 10,000 and 50,000 connections stored.

Connections are written straight into moto (in this process) with BatchWriteItem, in exactly
the shape `ConnectionStore` writes (`ConnectionRecord.to_item()`); listing needs no secrets.
The sizes are reached by topping up one table. Each page is requested through the gateway and
its `Query` reply is read through a botocore hook: items read per page is the reply's
ScannedCount. Read units are estimated from the page's item sizes (eventually consistent
Query: half a unit per started 4 KB). moto's own Query cost grows with the partition (it sorts
the whole partition on every call); DynamoDB reads only the page, so ScannedCount is the figure
that carries over to AWS, and moto's page time is reported as measured.
"""

from __future__ import annotations

import math
import time
from typing import Any

from bench.common import median, ms, progress
from bench.local import CallCounter, local_aws

KEY = "bench-scale"
PAGE = 100
REPEATS = 3


def _record(index: int) -> dict[str, Any]:
    from terapi.store.connections import ConnectionRecord

    created = f"2026-01-01T00:00:{index % 60:02d}Z"
    return ConnectionRecord(
        provider_config_key=KEY, connection_id=f"user-{index:07d}", provider="oauth2",
        created_at=created, updated_at=created,
        secret_arn=("arn:aws:secretsmanager:us-east-1:123456789012:secret:terapi/terapi-local/"
                    f"connections/{index:07d}-AbCdEf"),
        secret_version="00000000-0000-0000-0000-000000000001",  # noqa: S106
        credentials_type="oauth2",
        expires_at="2999-01-01T00:00:00Z", metadata_json='{"tenant":"acme","plan":"pro"}',
        refresh_shard=f"refresh#{index % 4}", refresh_due_at=32503679700,
    ).to_item()


def _seed(start: int, stop: int) -> float:
    """Write connections `start`..`stop` with BatchWriteItem; returns the seconds taken."""
    from terapi.aws import client
    from terapi.settings import get_settings

    db, table = client("dynamodb"), get_settings().table_name
    began = time.perf_counter()
    for first in range(start, stop, 25):
        batch = [{"PutRequest": {"Item": _record(i)}} for i in range(first, min(first + 25, stop))]
        reply = db.batch_write_item(RequestItems={table: batch})
        if reply.get("UnprocessedItems"):
            raise RuntimeError("moto left items unprocessed")
    return time.perf_counter() - began


def item_bytes(item: dict[str, Any]) -> int:
    """DynamoDB's size of an item: attribute names plus values (numbers approximated)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        if "S" in value:
            size += len(value["S"].encode())
        elif "N" in value:
            size += math.ceil(len(value["N"].lstrip("-").replace(".", "")) / 2) + 1
        else:
            size += 1
    return size


def _page(client: Any, counter: CallCounter, path: str) -> dict[str, Any]:
    times, reply = [], None
    for _ in range(REPEATS):
        with counter.counting() as calls:
            began = time.perf_counter()
            answer = client.request("GET", path)
            times.append(time.perf_counter() - began)
        if answer.status != 200:
            raise RuntimeError(f"listing failed: {answer.status} {answer.body}")
        reply = counter.query_replies[-1]
    assert reply is not None
    size = sum(item_bytes(i) for i in reply["Items"])
    return {"page_ms": ms(median(times)), "items_returned": reply["Count"],
            "items_read": reply["ScannedCount"], "aws_calls": list(calls),
            "page_kb": round(size / 1024, 1), "read_units": math.ceil(size / 4096) * 0.5}


def run(sizes: tuple[int, ...] = (1000, 10000, 50000)) -> dict[str, Any]:
    """Seed up to each size and measure the first page and a deep page at each."""
    counter = CallCounter()
    counter.install()
    rows, seeded, seed_seconds = [], 0, 0.0
    with local_aws() as (client, _template):
        from terapi.store.dynamo import encode_cursor, integration_pk

        for size in sorted(sizes):
            progress(f"scale: seeding to {size:,} connections")
            seed_seconds += _seed(seeded, size)
            seeded = size
            deep_key = {"pk": {"S": integration_pk(KEY)},
                        "sk": {"S": f"C#user-{size * 3 // 4:07d}"}}
            cursor = encode_cursor(deep_key, f"connections|{KEY}|None")
            first = _page(client, counter, f"/connection?provider_config_key={KEY}&limit={PAGE}")
            deep = _page(client, counter,
                         f"/connection?provider_config_key={KEY}&limit={PAGE}&cursor={cursor}")
            unfiltered = _page(client, counter, f"/connection?limit={PAGE}")
            rows.append({"connections": size, "first_page": first, "deep_page": deep,
                         "all_integrations_first_page": unfiltered})
            progress(f"scale: {size:,}: first page {first['page_ms']} ms, "
                     f"{first['items_read']} read; deep {deep['page_ms']} ms")
    reads = {row["first_page"]["items_read"] for row in rows} | {
        row["deep_page"]["items_read"] for row in rows}
    return {"page_size": PAGE, "rows": rows, "seed_seconds": round(seed_seconds, 1),
            "items_read_flat": reads == {PAGE}}
